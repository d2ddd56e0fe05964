"""The composite action (action.yml): its shell steps run here with bash, a stand-in `farm`
and `python3` on PATH recording their arguments, and GitHub's files in a temp folder."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"


def _steps() -> dict[str, dict]:
    """Each step's name, env (input -> expression) and run script, from action.yml's text."""
    steps: dict[str, dict] = {}
    current: dict | None = None
    section = None
    for line in ACTION.read_text().splitlines():
        name = re.match(r"^    - name: (.*)$", line)
        if name:
            current = steps.setdefault(name.group(1), {"env": {}, "run": []})
            section = None
            continue
        if current is None:
            continue
        if re.match(r"^      (env|run):", line):
            section = line.strip().split(":")[0]
            continue
        if re.match(r"^      \S", line):
            section = None
        elif section == "env" and line.strip():
            key, _, value = line.strip().partition(": ")
            current["env"][key] = value
        elif section == "run":
            current["run"].append(line[8:])
    return {k: {"env": v["env"], "run": "\n".join(v["run"]) + "\n"} for k, v in steps.items()}


def _recorder(folder: Path, name: str) -> None:
    path = folder / name
    log = folder / f"{name}.args"
    path.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done >> "{log}"\necho ---- >> "{log}"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _run(step: dict, tmp: Path, inputs: dict[str, str]) -> subprocess.CompletedProcess:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    _recorder(bin_dir, "farm")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNNER_TEMP": str(tmp / "runner")}
    for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH"):
        env[name] = str(tmp / name.lower())
        Path(env[name]).touch()
    (tmp / "runner").mkdir(exist_ok=True)
    for var, expression in step["env"].items():
        key = re.fullmatch(r"\$\{\{ inputs\.([a-z-]+) \}\}", expression)
        if key:
            env[var] = inputs.get(key.group(1), "")
    env.update({k: v for k, v in inputs.items() if k.isupper()})
    return subprocess.run(["bash", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=30)


def _calls(tmp: Path, name: str = "farm") -> list[list[str]]:
    text = (tmp / "bin" / f"{name}.args").read_text()
    return [chunk.strip("\n").split("\n") for chunk in text.split("----\n") if chunk.strip()]


def test_every_input_reaches_the_shell_through_the_environment_only():
    text = ACTION.read_text()
    runs = "\n".join(step["run"] for step in _steps().values())
    assert "${{" not in runs  # no expression spliced into a script (no injection through inputs)
    for name in re.findall(r"^  ([a-z-]+):$", text.split("outputs:")[0].split("inputs:")[1], re.M):
        assert f"${{{{ inputs.{name} }}}}" in text, name


def test_converge_step_runs_farm_up_with_a_private_docker_config(tmp_path):
    step = _steps()["Converge the farm"]
    done = _run(step, tmp_path, {"file": "ci/farm.toml"})
    assert done.returncode == 0, done.stderr
    dc = str(tmp_path / "runner" / "farm-docker-config")
    assert _calls(tmp_path) == [["up", "-f", "ci/farm.toml", "--docker-config", dc]]
    assert (tmp_path / "github_env").read_text() == f"FARM_DOCKER_CONFIG={dc}\n"
    assert stat.S_IMODE(os.stat(dc).st_mode) == 0o700


def test_build_step_passes_targets_vars_verify_run_atomic_and_report(tmp_path):
    step = _steps()["Build, push and publish"]
    inputs = {
        "file": "multiarch.toml",
        "targets": "api  tool-*\nworker",
        "vars": "  version=1.2.3 \nREGISTRY=r.example.com/team\n\nnote=two words",
        "verify-run": "true",
        "atomic": "true",
        "report": str(tmp_path / "report.json"),
        "FARM_DOCKER_CONFIG": "/dc",
    }
    done = _run(step, tmp_path, inputs)
    assert done.returncode == 0, done.stderr
    assert _calls(tmp_path) == [
        ["build", "-f", "multiarch.toml", "--docker-config", "/dc", "--progress", "plain"]
        + ["--report", str(tmp_path / "report.json")]
        + ["--var", "version=1.2.3", "--var", "REGISTRY=r.example.com/team", "--var", "note=two words"]
        + ["--verify-run", "--atomic", "api", "tool-*", "worker"]
    ]
    assert (tmp_path / "github_output").read_text() == f"report={tmp_path / 'report.json'}\n"


def test_build_step_defaults_build_everything_and_its_failure_fails_the_step(tmp_path):
    step = _steps()["Build, push and publish"]
    done = _run(
        step,
        tmp_path,
        {"file": "f.toml", "verify-run": "false", "atomic": "false", "report": "r.json", "FARM_DOCKER_CONFIG": "/dc"},
    )
    assert done.returncode == 0, done.stderr
    (call,) = _calls(tmp_path)
    assert "--verify-run" not in call and "--atomic" not in call and "--var" not in call and call[-1] == "r.json"
    failing = tmp_path / "bin" / "farm"
    failing.write_text("#!/bin/sh\nexit 1\n")
    done = _run_keep(step, tmp_path)
    assert done.returncode == 1


def _run_keep(step: dict, tmp: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{tmp / 'bin'}:{os.environ['PATH']}", "INPUT_FILE": "f.toml", "FARM_DOCKER_CONFIG": "/dc"}
    env.update(GITHUB_OUTPUT=str(tmp / "github_output"), INPUT_REPORT="r.json")
    return subprocess.run(["bash", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=30)


def test_install_step_pins_the_action_ref_and_every_dependency(tmp_path):
    step = _steps()["Install farm (pinned)"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    venv = tmp_path / "venv"
    # A stand-in python: `-m venv DIR` makes DIR/bin/python (this same recorder) and DIR/bin/farm.
    python = bin_dir / "python3"
    python.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do printf "%s\\n" "$a"; done >> "{bin_dir}/python3.args"\n'
        f'echo ---- >> "{bin_dir}/python3.args"\n'
        'if [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python";'
        ' printf "#!/bin/sh\\necho farm 0.1.0\\n" > "$3/bin/farm"; chmod +x "$3/bin/farm"; fi\n'
    )
    python.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FARM_ACTION_PATH": str(ROOT),
        "FARM_VENV": str(venv),
        "INPUT_PYTHON": "python3",
        "GITHUB_PATH": str(tmp_path / "github_path"),
    }
    done = subprocess.run(["bash", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "farm 0.1.0" in done.stdout
    calls = _calls(tmp_path, "python3")
    assert calls[0] == ["-m", "venv", str(venv)]
    assert calls[1][-3:] == ["--constraint", str(ROOT / "action-constraints.txt"), str(ROOT)]
    assert (tmp_path / "github_path").read_text() == f"{venv}/bin\n"


def test_the_constraints_pin_every_runtime_dependency_exactly():
    pinned = {}
    for line in (ROOT / "action-constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned with =="
            pinned[name.lower().replace("_", "-")] = version
    for dependency in ("python-on-whales", "pydantic", "pydantic-core", "typer", "tomli-w", "tomli", "rich"):
        assert dependency in pinned, dependency


@pytest.mark.parametrize("key", ["file", "targets", "vars", "verify-run", "atomic", "report"])
def test_the_issue_inputs_exist(key):
    assert re.search(rf"^  {key}:$", ACTION.read_text(), re.M)
