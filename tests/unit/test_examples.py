"""The examples: their farm files load, share the lab's farm, and the CI workflow's `farm`
commands parse with this `farm`. (Their Dockerfiles are linted in test_lint.py.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

from buildkit_farm.cli import app
from buildkit_farm.farmfile.load import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LAB_EXAMPLES = ["folder-list", "whoami", "lab-fix"]


@pytest.mark.parametrize("name", LAB_EXAMPLES + ["ci"])
def test_example_has_readme_and_valid_farm_file(name):
    folder = EXAMPLES / name
    assert (folder / "README.md").read_text().strip()
    farm_file = next(folder.glob("*.toml"))
    config = load_config(farm_file)
    assert config.targets


@pytest.mark.parametrize("name", LAB_EXAMPLES)
def test_example_shares_the_lab_farm(name):
    # Same builder and nodes as lab/farm.toml: `farm up` with any example finds the farm
    # the others made already converged.
    lab = load_config(ROOT / "lab" / "farm.toml")
    example = load_config(EXAMPLES / name / "farm.toml")
    assert example.builder.name == lab.builder.name
    assert example.node_settings() == lab.node_settings()


def test_folder_list_builds_the_three_linux_files_per_platform():
    (target,) = load_config(EXAMPLES / "folder-list" / "farm.toml").targets
    assert {p: path.name for p, path in target.dockerfiles.items()} == {
        "linux/amd64": "Dockerfile.linux-amd64",
        "linux/arm64": "Dockerfile.linux-arm64",
        "linux/arm/v7": "Dockerfile.linux-arm",
    }
    assert (EXAMPLES / "folder-list" / "Dockerfile.windows-amd64").is_file()


def _workflow_commands(text: str) -> list[str]:
    """The shell lines of every `run:` step (literal `|` and folded `>-` blocks)."""
    lines = text.splitlines()
    commands: list[str] = []
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)(?:- )?run:\s*(.*)$", line)
        if not match:
            continue
        indent, value = len(match.group(1)), match.group(2).strip()
        if value not in ("|", "|-", ">", ">-"):
            commands.append(value)
            continue
        block = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            block.append(following.strip())
        commands += [" ".join(b for b in block if b)] if value.startswith(">") else block
    return commands


def test_ci_workflow_farm_commands_parse():
    text = (EXAMPLES / "ci" / "farm-build.yml").read_text()
    farm_lines = [c for c in _workflow_commands(text) if c.startswith("farm ")]
    assert {c.split()[1] for c in farm_lines} >= {"validate", "lint", "up", "build", "down"}
    group = typer.main.get_command(app)
    for command in farm_lines:
        # `${GITHUB_SHA::12}` and "$DOCKER_CONFIG" are filled in by the runner's shell.
        words = shlex.split(re.sub(r"\$\{?[A-Za-z_][^\s\"]*", "X", command))[1:]
        with group.make_context("farm", list(words)) as ctx:
            sub = group.get_command(ctx, words[0])
            assert sub is not None, f"{command!r}: no such farm command"
            try:
                sub.make_context(words[0], words[1:], parent=ctx)
            except Exception as err:  # typer's own click: a usage error names the bad option
                pytest.fail(f"{command!r}: {err}")


def test_ci_workflow_uses_a_private_docker_config_and_secrets_only_by_reference():
    text = (EXAMPLES / "ci" / "farm-build.yml").read_text()
    assert "docker/login-action@" in text
    assert 'echo "DOCKER_CONFIG=$dir" >> "$GITHUB_ENV"' in text
    for command in ("farm up", "farm build", "farm down"):
        line = next(c for c in _workflow_commands(text) if c.startswith(command))
        assert '--docker-config "$DOCKER_CONFIG"' in line
    assert not re.search(r"(password|token|key)\s*[:=]\s*[\"']?[A-Za-z0-9+/]{16,}", text, re.I)


def test_ci_workflow_installs_only_pinned_versions():
    text = (EXAMPLES / "ci" / "farm-build.yml").read_text()
    installs = [c for c in _workflow_commands(text) if "pip install" in c]
    assert installs == ["python -m pip install --no-deps -r examples/ci/requirements.txt"]
    pins = [
        line.strip()
        for line in (EXAMPLES / "ci" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.]*", p) for p in pins), pins
    assert any(p.startswith("buildkit-farm==") for p in pins)
