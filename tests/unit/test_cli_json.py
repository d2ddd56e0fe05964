"""Machine output: one JSON document on stdout under --json, the same envelope on success and
failure (buildkit_farm/envelope.py); NO_COLOR; the report and every document redacted.
Through the real entry point, with commands that need no Docker engine."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit_farm.builds import command, report
from buildkit_farm.envelope import document, json_command
from buildkit_farm.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
ENVELOPE = {"ok", "command", "exit_code", "result", "error"}
PASSWORD = "hunter2pw"
NPM = "npm_" + "a1B2" * 9


def farm(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("FARM_FILE", "NO_COLOR")}
    return subprocess.run(
        [sys.executable, "-c", "from buildkit_farm.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**full_env, **(env or {})},
        timeout=60,
    )


def one_document(done: subprocess.CompletedProcess) -> dict:
    """stdout is exactly one JSON document in the envelope, and its exit_code is the process's."""
    data = json.loads(done.stdout)  # raises on text before or after the document
    assert set(data) == ENVELOPE
    assert data["exit_code"] == done.returncode
    assert data["ok"] is (data["error"] is None)
    return data


@pytest.fixture()
def farm_file(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM 127.0.0.1:5000/base:latest\nARG TOKEN\nRUN true\n")
    path = tmp_path / "multiarch.toml"
    path.write_text(
        '[builder]\nname = "jsontest"\n\n'
        '[[node]]\nname = "node1"\nendpoint = "unix:///nonexistent/docker.sock"\nplatforms = ["linux/amd64"]\n\n'
        '[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/amd64"]\n'
        'tags = ["127.0.0.1:5000/jsontest/app:1"]\n'
    )
    return path


def test_validate_success_and_failure_share_the_envelope(farm_file, tmp_path):
    ok = one_document(farm("validate", "-f", str(farm_file), "--json"))
    assert ok["ok"] and ok["command"] == "validate" and ok["result"]["targets"][0]["name"] == "app"
    bad = tmp_path / "bad.toml"
    bad.write_text("[builder]\nname = 3\n")
    failed = one_document(farm("validate", "-f", str(bad), "--json"))
    assert failed["exit_code"] == 2 and failed["result"] is None
    assert failed["error"]["issues"] and failed["error"]["file"] == str(bad)


def test_a_usage_error_under_json_is_a_document_too():
    done = farm("build", "--no-such-flag", "--json")
    data = one_document(done)
    assert done.returncode == 2 and data["command"] == "build" and "--no-such-flag" in data["error"]["message"]


def test_a_missing_file_under_json_is_a_document_for_every_command(tmp_path):
    for name in ("plan", "up", "status", "down", "build", "lint", "validate"):
        done = farm(name, "-f", str(tmp_path / "none.toml"), "--json", cwd=tmp_path)
        data = one_document(done)
        assert done.returncode == 2 and data["command"] == name, name
        assert "file not found" in data["error"]["message"], name


def test_lint_findings_fail_in_the_envelope():
    done = farm("lint", "--json", "examples/lab-fix/Dockerfile.broken")
    data = one_document(done)
    assert done.returncode == 1 and data["error"]["exit_code"] == 1 and data["result"]["findings"]


def test_init_prints_its_document(tmp_path):
    data = one_document(farm("init", "--json", cwd=tmp_path, env={"DOCKER_HOST": "unix:///nonexistent.sock"}))
    assert data["command"] == "init" and data["result"]["file"].endswith("multiarch.toml")


def test_build_dry_run_json_is_one_document_with_the_commands_and_no_credential(farm_file):
    done = farm(
        "build",
        "-f",
        str(farm_file),
        "--dry-run",
        "--json",
        "--build-arg",
        f"TOKEN={NPM}",
        "--build-arg",
        f"MIRROR=https://ci:{PASSWORD}@mirror.example.com/",
        "--build-arg",
        "DB_PASSWORD=plainword",
        "--build-arg",
        "VERSION=1.2.3",
    )
    data = one_document(done)
    assert data["ok"] and data["result"]["dry_run"] is True
    text = "\n".join(data["result"]["commands"])
    assert "docker buildx bake" in text and '"VERSION": "1.2.3"' in text
    for secret in (NPM, PASSWORD, "plainword"):
        assert secret not in done.stdout and secret not in done.stderr
    assert '"DB_PASSWORD": "REDACTED"' in text and '"TOKEN": "REDACTED"' in text


def test_build_dry_run_without_json_hides_credential_build_args_too(farm_file):
    done = farm("build", "-f", str(farm_file), "--dry-run", "--build-arg", f"MIRROR=https://ci:{PASSWORD}@m.example/")
    assert done.returncode == 0, done.stderr
    assert "docker buildx bake" in done.stdout and PASSWORD not in done.stdout + done.stderr


def test_the_report_and_the_step_summary_are_redacted(tmp_path):
    log = f"#8 ERROR: fetching https://ci:{PASSWORD}@git.example.com/x.git failed; token {NPM}"
    failed = report.TargetReport(target="app", tags=["r/app:1"], ok=False, error=log, outcome="failed")
    path = tmp_path / "report.json"
    report.finish([failed], UsageError(log), report_path=path, env={"GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")})
    for text in (path.read_text(), (tmp_path / "s.md").read_text()):
        assert PASSWORD not in text and NPM not in text and "https://***@git.example.com" in text
    assert json.loads(path.read_text())["targets"][0]["error"].startswith("#8 ERROR: fetching https://***@git")


def test_every_document_is_redacted():
    text = document("inspect", {"ref": f"https://u:{PASSWORD}@r.example/x", "tokens": [NPM]})
    assert PASSWORD not in text and NPM not in text and json.loads(text)["ok"] is True


@pytest.mark.parametrize(
    "pair, shown",
    [
        ("VERSION=1.2.3", "VERSION=1.2.3"),
        ("NPM_TOKEN=abc", "NPM_TOKEN=REDACTED"),
        ("db_password=x", "db_password=REDACTED"),
        (f"MIRROR=https://ci:{PASSWORD}@m/", "MIRROR=REDACTED"),
        (f"X={NPM}", "X=REDACTED"),
        ("EMPTY_TOKEN=", "EMPTY_TOKEN="),
    ],
)
def test_printed_build_args_hide_credentials(pair, shown):
    assert (
        command.redact(["docker", "buildx", "build", "--build-arg", pair, "."])
        == f"docker buildx build --build-arg {shown} ."
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["plan", "--json"], "plan"),
        (["build", "app", "--json", "--var", "x=1"], "build"),
        (["build", "--", "--json"], None),  # a target named --json
        (["validate"], None),
    ],
)
def test_json_mode_is_read_from_the_arguments(args, expected):
    assert json_command(args) == expected


def _on_a_terminal(env: dict[str, str]) -> bytes:
    """stderr and stdout of a failing `farm validate` on a pseudo-terminal."""
    leader, follower = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FARM_FILE")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from buildkit_farm.cli import main; main()", "validate", "-f", "/nonexistent.toml"],
        stdout=follower,
        stderr=follower,
        env={**full_env, **env},
    )
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=30)
    os.close(leader)
    return out


def test_no_color_means_no_escape_sequence_even_on_a_terminal():
    assert b"\x1b[" in _on_a_terminal({})  # the error is red on a terminal...
    for value in ("1", ""):
        shown = _on_a_terminal({"NO_COLOR": value})
        assert b"file not found" in shown and b"\x1b" not in shown  # ...and plain with NO_COLOR, any value
