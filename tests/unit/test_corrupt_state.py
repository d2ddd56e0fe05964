"""Corrupt state files (a context's meta.json, buildx's instance file, the farm's record) are
named with their fix, exit 2, no traceback. They are read before any engine is asked."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from farms import ONE_NODE

from buildkit_farm.docker import DockerPaths
from buildkit_farm.errors import CorruptState
from buildkit_farm.reconcile import observe

FARM = ONE_NODE


@pytest.fixture()
def paths(tmp_path) -> DockerPaths:
    return DockerPaths.resolve(tmp_path / "docker")


def _write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '{"Nodes": [{"Endpoint": "x"}]}', '{"Name": "farm", "Nodes": 3}']
)
def test_instance_file(paths, text):
    _write(paths.instance_file("farm"), text)
    with pytest.raises(CorruptState) as caught:
        observe.read_builder(paths, "farm")
    assert str(paths.instance_file("farm")) in caught.value.message
    assert "delete it" in (caught.value.hint or "") and caught.value.exit_code == 2


def test_instance_file_points_to_the_backup_when_there_is_one(paths):
    _write(paths.instance_file("farm"), "\x00garbage")
    _write(paths.farm_dir / "farm.instance.bak", '{"Name": "farm"}')
    with pytest.raises(CorruptState) as caught:
        observe.read_builder(paths, "farm")
    assert str(paths.farm_dir / "farm.instance.bak") in (caught.value.hint or "")


@pytest.mark.parametrize("text", ["", "{", '{"builder": "farm", "nodes": {"n": {}}}', "[]", '{"nodes": {}}'])
def test_record(paths, text):
    _write(paths.record_file("farm"), text)
    with pytest.raises(CorruptState) as caught:
        observe.read_record(paths, "farm")
    assert str(paths.record_file("farm")) in caught.value.message
    assert "docker buildx rm farm" in (caught.value.hint or "")


@pytest.mark.parametrize("text", ["nope", '{"Endpoints": [1]}', '{"Endpoints": {"docker": "x"}}', "[]"])
def test_context_meta(paths, text):
    _write(paths.context_meta("node1"), text)
    with pytest.raises(CorruptState) as caught:
        observe.read_context(paths, "node1")
    assert str(paths.context_meta("node1")) in caught.value.message
    assert "docker context rm -f node1" in (caught.value.hint or "")


@pytest.mark.parametrize("which", ["instance", "record", "context"])
def test_farm_plan_names_the_file_and_exits_2(tmp_path, paths, which):
    farm = tmp_path / "farm.toml"
    farm.write_text(FARM)
    target = {
        "instance": paths.instance_file("farm"),
        "record": paths.record_file("farm"),
        "context": paths.context_meta("node1"),
    }[which]
    _write(target, "{corrupt")
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "buildkit_farm", "plan", "-f", str(farm), "--docker-config", str(paths.docker_config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert str(target) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "hint:" in proc.stderr
