"""Issue 14 on the real lab: a failed replace keeps the builder, `farm status` exits 3 when a
node is not running, a build holds the lock shared (a concurrent `farm up` waits for it)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from integration.test_up import FARM, Farm

pytestmark = pytest.mark.integration


@pytest.fixture
def farm(lab, docker_config, unique_name, tmp_path):
    builder = unique_name("hs")
    f = Farm(tmp_path, Path(docker_config), builder, lab.farm_data(builder))
    f.data["node"] = [n for n in f.data["node"] if n["name"] == "node1"]  # one node: quick, and a replace is easy
    f.write()
    yield f
    f.run("down")


def test_a_failed_create_after_a_replace_keeps_the_builder(farm):
    farm.ok("up")
    before, nodes = farm.instance(), list(farm.data["node"])
    # The only node renamed: buildx cannot leave its last node, so the farm replaces the
    # builder; the new node's engine does not exist, so its create fails after the rm.
    farm.data["node"] = [{"name": "gone", "endpoint": "unix:///nonexistent/docker.sock", "platforms": ["linux/amd64"]}]
    farm.write()
    result = farm.run("up")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "-/+ builder" in result.stdout
    assert "put back as it was before the replace" in result.stderr
    assert "applied before:" in result.stderr and "-/+ builder" in result.stderr.split("applied before:")[1]
    assert farm.instance() == before  # the builder is still there, as it was
    inspect = farm.docker("buildx", "inspect", farm.builder)
    assert f"{farm.builder}-node1".lower() in inspect.stdout
    # Back to the old file: up converges (its BuildKit container is started again).
    farm.data["node"] = nodes
    farm.write()
    farm.ok("up")
    assert "No changes" in farm.ok("up").stdout


def test_status_exits_3_when_a_node_is_not_running_and_0_when_all_are(farm):
    farm.ok("up")
    ok = farm.run("status", "--json")
    assert ok.returncode == 0, ok.stderr
    assert [n["status"] for n in json.loads(ok.stdout)["result"]["nodes"]] == ["running"]
    farm.docker("container", "stop", f"buildx_buildkit_{farm.builder}-node1".lower(), context="node1")
    down = farm.run("status", "--json")
    assert down.returncode == 3, down.stderr
    assert [n["status"] for n in json.loads(down.stdout)["result"]["nodes"]] == ["stopped"]  # still printed in full
    text = farm.run("status")
    assert text.returncode == 3 and "node1" in text.stdout


def test_farm_up_waits_for_a_running_build(farm):
    from buildkit_farm.reconcile import lock

    (farm.tmp / "Dockerfile").write_text("FROM 127.0.0.1:5000/base:latest\n")
    farm.data["target"] = [
        {"name": "app", "context": ".", "platforms": ["linux/amd64"], "tags": [f"127.0.0.1:5000/{farm.builder}:x"]}
    ]
    farm.write()
    farm.ok("up")
    # A build holds the lock shared for its whole run; `up` and `down` must wait for it.
    with lock.hold(farm.docker_config / "buildkit-farm", shared=True):
        t0 = time.monotonic()
        result = farm.run("up", "--lock-timeout", "1")
        assert result.returncode == 1 and time.monotonic() - t0 >= 1
        assert "one or more builds" in result.stderr
        # ...while another build's convergence check shares it
        check = subprocess.run(
            [FARM, "build", "--dry-run", "-f", str(farm.file)],
            env=farm.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "buildx" in check.stdout + check.stderr  # the dry run printed its command
        assert "waiting for another farm run" not in check.stderr, check.stderr
