"""The pipeline flags through the real `farm build` entry point, with --dry-run (no Docker):
what is printed, and the input errors (exit 2, nothing run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FARM_FILE = """
[builder]
name = "farm"
[[node]]
name = "node1"
endpoint = "unix:///var/run/docker.sock"
platforms = ["linux/amd64"]
[[node]]
name = "node2"
endpoint = "unix:///tmp/farm-test-node2.sock"
platforms = ["linux/arm64"]
[[target]]
name = "app"
context = "app"
platforms = ["linux/amd64", "linux/arm64"]
tags = ["127.0.0.1:5000/app:1"]
cache_to = ["type=registry,ref=127.0.0.1:5000/app:cache"]
"""


@pytest.fixture
def farm_file(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM 127.0.0.1:5000/base\nARG WORD\n")
    path = tmp_path / "farm.toml"
    path.write_text(FARM_FILE)
    return path


def build(farm_file: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "NO_COLOR": "1", "DOCKER_CONFIG": str(farm_file.parent / "docker"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from buildkit_farm.cli import main; main()", "build", "-f", str(farm_file), *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )


def test_dry_run_no_push_shows_a_build_that_writes_nothing(farm_file):
    done = build(farm_file, "--dry-run", "--no-push")
    assert done.returncode == 0, done.stderr
    assert "push=false" in done.stdout and "push=true" not in done.stdout
    assert "imagetools" not in done.stdout and '"cache-to"' not in done.stdout
    assert "nothing is written to any registry" in done.stdout


def test_dry_run_applies_set_platform_and_a_bare_build_arg(farm_file):
    done = build(
        farm_file,
        "--dry-run",
        "--platform",
        "aarch64",
        "--set",
        "app.labels.team=ci",
        "--set",
        "*.tags=127.0.0.1:5000/app:pr",
        "--build-arg",
        "WORD",
        env={"WORD": "from-env"},
    )
    assert done.returncode == 0, done.stderr
    assert "# target app: linux/arm64 on node2" in done.stdout
    assert '"team": "ci"' in done.stdout and '"WORD": "from-env"' in done.stdout
    assert "127.0.0.1:5000/app:pr" in done.stdout and "127.0.0.1:5000/app:1" not in done.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--platform", "linux/s390x"], '--platform linux/s390x: target "app" does not build it'),
        (["--set", "app.context=/elsewhere"], 'farm does not override "context"'),
        (["--set", "web.tags=x"], 'no selected target matches "web"'),
        (["--no-push", "--verify-run"], "--no-push writes nothing"),
        (["--progress", "fancy"], '--progress "fancy"'),
        (["--metadata-file", "/nonexistent-dir/meta.json"], "does not exist"),
    ],
)
def test_bad_flags_exit_2_before_anything_runs(farm_file, args, words):
    done = build(farm_file, "--dry-run", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr
