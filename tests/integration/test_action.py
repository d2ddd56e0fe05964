"""action.yml on the lab, run like a GitHub runner runs it (tests/unit/action_runner.py): the
install step really makes farm's venv from this checkout, `farm up` and `farm build` really
run on the lab's nodes, and the registry is the lab's password registry (`auth_registry`).

Job 1: `docker login` (as docker/login-action does, into the job's $DOCKER_CONFIG), then the
action with two tags and `verify-run: true`; then the documented `farm down` step.
Job 2: no login, `push: "false"`: every platform built, nothing written to the registry.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

import pytest
import tomli_w
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tests" / "unit"))  # action_runner.py, shared with the unit tests
from action_runner import Job, StepResult  # noqa: E402

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "folder-list-2"
PLATFORMS = ["linux/amd64", "linux/arm64"]

# docker/login-action's part, as the docker CLI does it: the login lands in $DOCKER_CONFIG.
LOGIN = 'printf "%s" "$REGISTRY_PASSWORD" | docker login --username "$REGISTRY_USER" --password-stdin "$REGISTRY"\n'


def _readme_step(name: str) -> str:
    """The `run:` of a step of the README's complete workflow: the docs' flow is the one tested."""
    block = re.search(r"^```yaml\n(name: image\n.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    assert block, "README.md: the complete workflow"
    steps = yaml.safe_load(block.group(1))["jobs"]["build"]["steps"]
    (step,) = [s for s in steps if s.get("name", "").startswith(name)]
    return step["run"]


DOWN = _readme_step("Remove the farm's builder")


def _job(tmp: Path, lab, docker_config: Path, builder: str, registry: str) -> Job:
    """A job with the lab's farm under a unique builder and one target that pushes to `registry`."""
    workspace = tmp / "workspace"
    workspace.mkdir()
    data = lab.farm_data(builder)
    data["target"] = [{"name": "app", "context": str(EXAMPLE), "platforms": PLATFORMS, "tags": [f"{registry}:file"]}]
    (workspace / "multiarch.toml").write_text(tomli_w.dumps(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_", "VIRTUAL_ENV"))}
    # The runner's PATH, not the test venv's: the action must bring its own farm.
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(sys.prefix))
    env.update(lab.env, DOCKER_CONFIG=str(docker_config), GITHUB_WORKSPACE=str(workspace), NO_COLOR="1")
    return Job(home=tmp / "runner", base_env=env)


def _ok(results: list[StepResult]) -> None:
    for r in results:
        assert r.returncode == 0, f"step {r.name!r} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"


def _texts(job: Job, outputs: dict[str, str]) -> dict[str, str]:
    """Every log, output and file the job left (its login's docker config aside)."""
    texts = {f"{r.name} stdout": r.stdout for r in job.results}
    texts.update({f"{r.name} stderr": r.stderr for r in job.results})
    texts.update({f"{r.name} summary": r.summary for r in job.results})
    texts.update({f"output {k}": v for k, v in outputs.items()})
    texts.update({f"env {k}": v for k, v in job.env.items()})
    for path in job.home.rglob("*"):
        if path.is_file() and "buildkit-farm-venv" not in path.parts:
            texts[str(path)] = path.read_text(errors="replace")
    return texts


def test_job_logs_in_pushes_two_tags_verified_and_leaks_no_password(
    tmp_path, lab, docker_config, unique_name, auth_registry
):
    repo = f"action/{unique_name('app')}"
    job = _job(tmp_path, lab, docker_config, f"act-{unique_name}", auth_registry.repo(repo))
    secret = {"REGISTRY": auth_registry.address, "REGISTRY_USER": auth_registry.user}
    login = job.run(LOGIN, name="docker login", env={**secret, "REGISTRY_PASSWORD": auth_registry.password})
    _ok([login])
    tags = f"{auth_registry.repo(repo)}:1.0\n{auth_registry.repo(repo)}:latest"
    outputs, steps = job.uses(ROOT, {"file": "multiarch.toml", "targets": "app", "tags": tags, "verify-run": "true"})
    down = job.run(DOWN, name="farm down")
    _ok([*steps, down])

    for tag in ("1.0", "latest"):
        index, digest = auth_registry.manifest(repo, tag)
        assert digest == outputs["digest"], tag
        assert (
            sorted(
                f"{m['platform']['os']}/{m['platform']['architecture']}"
                for m in index["manifests"]
                if m["platform"]["os"] != "unknown"
            )
            == PLATFORMS
        )
    assert json.loads(outputs["digests"]) == {"app": outputs["digest"]}
    metadata = json.loads(outputs["metadata"])
    assert isinstance(metadata, dict) and metadata
    report = json.loads(Path(outputs["report"]).read_text())
    assert report["ok"] is True and report["targets"][0]["digest"] == outputs["digest"]
    assert outputs["docker-config"] == str(docker_config)  # the job's own: the login was used

    basic = base64.b64encode(f"{auth_registry.user}:{auth_registry.password}".encode()).decode()
    for where, text in _texts(job, outputs).items():
        assert auth_registry.password not in text, where
        assert basic not in text, where


def test_job_without_login_and_push_false_builds_everything_and_writes_nothing(
    tmp_path, lab, docker_config, unique_name, auth_registry
):
    repo = f"action/{unique_name('nopush')}"
    job = _job(tmp_path, lab, docker_config, f"act-{unique_name}", auth_registry.repo(repo))
    outputs, steps = job.uses(ROOT, {"targets": "app", "tags": f"{auth_registry.repo(repo)}:pr", "push": "false"})
    down = job.run(DOWN, name="farm down")
    _ok([*steps, down])

    report = json.loads(Path(outputs["report"]).read_text())
    assert report["ok"] is True
    (target,) = report["targets"]
    assert sorted(p["platform"] for p in target["platforms"]) == PLATFORMS
    assert all(p["duration_s"] is not None for p in target["platforms"])  # each one built on its node
    assert not [r for r in auth_registry.catalog() if r == repo]
    assert auth_registry.tags(repo) == []
