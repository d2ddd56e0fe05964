"""The `remote` driver on the real lab: standalone buildkitd daemons, no Docker context.

Each test starts its own buildkitd containers (the lab's BuildKit image) on node1's and
node2's engines, listening on free loopback ports, and removes them afterwards. `farm` sees
them only through their tcp:// addresses, as a team attaching standalone daemons would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FARM = str(Path(sys.executable).with_name("farm"))
EXAMPLE = ROOT / "examples" / "folder-list-2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Daemon:
    """One standalone buildkitd in a container on one lab engine."""

    def __init__(self, engine: str, name: str, image: str) -> None:
        self.engine, self.name, self.port = engine, name, _free_port()
        self.id = self.docker(
            "run",
            "-d",
            "--name",
            name,
            "--privileged",
            "--network",
            "host",
            image,
            "--addr",
            f"tcp://127.0.0.1:{self.port}",
        ).stdout.strip()
        deadline = time.monotonic() + 30
        while not _listens(self.port):
            assert time.monotonic() < deadline, (
                f"buildkitd {name} does not listen on {self.port}: {self.docker('logs', name).stderr[-2000:]}"
            )
            time.sleep(0.2)

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", "-H", self.engine, *args], capture_output=True, text=True, timeout=300)
        assert not check or result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
        return result


@pytest.fixture
def daemons(lab, unique_name):
    started: list[Daemon] = []
    try:
        for index, engine in enumerate((lab.node1, lab.node2_socket), start=1):
            started.append(Daemon(engine, f"farm-remote-{unique_name}-{index}", lab.buildkit_image))
        yield started
    finally:
        for daemon in started:
            daemon.docker("rm", "-f", daemon.name, check=False)


@pytest.fixture
def remote_farm(tmp_path, docker_config, unique_name, lab, daemons):
    amd64, arm64 = daemons
    tag = f"{lab.registry}/remote-test-{unique_name}:1".lower()
    data = {
        "builder": {"name": f"r{unique_name}", "driver": "remote"},
        "node": [
            {"name": "r1", "endpoint": amd64.address, "platforms": ["linux/amd64"]},
            {"name": "r2", "endpoint": arm64.address, "platforms": ["linux/arm64"]},
        ],
        "target": [
            {
                "name": "folder-list-2",
                "context": str(EXAMPLE),
                "platforms": ["linux/amd64", "linux/arm64"],
                "tags": [tag],
            }
        ],
    }
    file = tmp_path / "farm.toml"
    file.write_text(tomli_w.dumps(data))
    env = {**os.environ, **lab.env, "DOCKER_CONFIG": str(docker_config), "NO_COLOR": "1"}

    def farm(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [FARM, *args, "-f", str(file)], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
        )

    yield farm, tag
    farm("down")


def test_remote_nodes_are_observed_and_build_their_platforms(remote_farm, daemons, lab):
    farm, tag = remote_farm
    up = farm("up")
    assert up.returncode == 0, up.stdout + up.stderr

    status = json.loads(farm("status", "--json").stdout)["result"]
    nodes = {n["name"]: n for n in status["nodes"]}
    for name, daemon in zip(("r1", "r2"), daemons):
        assert nodes[name]["status"] == "running" and nodes[name]["buildkit_version"], nodes[name]
        assert nodes[name]["endpoint"] == daemon.address
    assert "linux/arm64" in nodes["r2"]["detected"]

    built = farm("build", "--json")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    report = json.loads(built.stdout)["result"]["targets"][0]
    assert {p["platform"]: p["node"] for p in report["platforms"]} == {"linux/amd64": "r1", "linux/arm64": "r2"}
    # evidence: the arm64 RUN ran inside node2's standalone buildkitd, the amd64 one in node1's
    amd64, arm64 = daemons
    arm_cgroup = arm64.docker(
        "run", "--rm", "--platform", "linux/arm64", tag, "cat", "/folder-list/built-in-cgroup.txt"
    ).stdout
    amd_cgroup = amd64.docker(
        "run", "--rm", "--platform", "linux/amd64", tag, "cat", "/folder-list/built-in-cgroup.txt"
    ).stdout
    assert arm64.id in arm_cgroup and amd64.id not in arm_cgroup, arm_cgroup
    assert amd64.id in amd_cgroup, amd_cgroup

    # no Docker engine behind a remote node: --verify-run is refused before anything runs
    refused = farm("build", "--verify-run")
    assert refused.returncode == 2 and "remote driver's nodes are BuildKit daemons" in refused.stderr, refused.stderr


def test_a_remote_node_that_does_not_answer_stops_the_build_by_name(remote_farm, daemons):
    farm, _ = remote_farm
    assert farm("up").returncode == 0
    daemons[1].docker("stop", daemons[1].name)

    result = farm("build")

    assert result.returncode == 1, result.stdout + result.stderr
    assert f'node "r2" is unreachable: BuildKit at {daemons[1].address} does not answer' in result.stderr
    assert "start the node's BuildKit daemon" in result.stderr
