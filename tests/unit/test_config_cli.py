"""`farm validate`, `farm schema` and `farm init` through the real entry point (no Docker needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "multiarch.toml.example"
CASES = Path(__file__).parent / "config_cases"


def farm(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    if env is None or "FARM_FILE" not in env:
        full_env.pop("FARM_FILE", None)
    return subprocess.run(
        [sys.executable, "-c", "from buildkit_farm.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=60,
    )


def test_validate_the_example_prints_nodes_and_targets():
    done = farm("validate", "-f", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{EXAMPLE}: ok")
    assert "node node2  ssh://root@node2.example     -> linux/arm64, linux/arm/v7" in done.stdout
    assert "target folder-list-2: linux/amd64 on node1, linux/arm64 on node2, linux/386 on edge" in done.stdout


def test_validate_json_on_success():
    done = farm("validate", "-f", str(EXAMPLE), "--json")
    assert done.returncode == 0
    document = json.loads(done.stdout)
    assert document["ok"] is True and document["command"] == "validate" and document["error"] is None
    data = document["result"]
    assert data["ok"] is True
    assert [n["name"] for n in data["nodes"]] == ["node1", "node2", "edge"]
    assert data["targets"][0]["platforms"]["linux/386"] == "edge"


def test_validate_json_lists_every_issue_and_exits_2():
    done = farm("validate", "-f", str(CASES / "duplicate_pins.toml"), "--json")
    assert done.returncode == 2
    document = json.loads(done.stdout)
    assert document["ok"] is False and document["exit_code"] == 2 and document["result"] is None
    data = document["error"]
    assert data["issues"] == [
        {
            "path": 'node "node1".platforms[1]',
            "message": "linux/amd64 is listed twice",
            "hint": "aliases count: aarch64 and linux/arm64 are the same platform",
            "line": None,
        }
    ]


def test_validate_reads_farm_file_from_the_environment_then_the_default(tmp_path):
    done = farm("validate", cwd=tmp_path, env={"FARM_FILE": str(EXAMPLE)})
    assert done.returncode == 0, done.stderr
    done = farm("validate", cwd=tmp_path)
    assert done.returncode == 2
    assert "multiarch.toml: file not found (create one with `farm init`" in done.stderr
    assert "Traceback" not in done.stderr


def test_schema_is_json_for_editors():
    done = farm("schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) == {"builder", "node", "target", "bake"}


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path):
    done = farm("init", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)["result"]
    assert data["detected_from"] in ("engine", "machine", "default")
    assert data["nodes"][0]["platforms"] == [data["platform"]]
    assert farm("validate", cwd=tmp_path).returncode == 0
    again = farm("init", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert farm("init", "--force", cwd=tmp_path).returncode == 0


def test_init_adds_a_target_when_a_dockerfile_is_there(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert farm("init", cwd=tmp_path).returncode == 0
    done = farm("validate", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert [t["name"] for t in json.loads(done.stdout)["result"]["targets"]] == ["app"]


def test_version_and_usage_errors():
    done = farm("--version")
    assert done.returncode == 0 and done.stdout.startswith("farm ")
    assert farm("validate", "--no-such-flag").returncode == 2


def test_help_validate_and_schema_never_import_python_on_whales():
    code = (
        "import sys\n"
        "from buildkit_farm.cli import app\n"
        "for args in (['--help'], ['validate', '-f', sys.argv[1]], ['schema']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('python_on_whales')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_init_into_a_missing_folder_is_a_usage_error(tmp_path):
    done = farm("init", "-f", str(tmp_path / "no-such-folder" / "multiarch.toml"))
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr
