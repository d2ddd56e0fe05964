"""Node pools on the real lab: failover, failback, a node killed mid-build, a pool all down.

A pool node is taken down the way a machine goes away: each test starts its own sshd
(the `sshd` fixture, private_sshd.py: the lab's host key and config on a free port, its
`SetEnv DOCKER_HOST` pointing at node2's or node3's socket) and stops it. The shared sshd on 2222 is never touched. Which
node really built a platform is read from the image: the RUN step records
/proc/self/cgroup, which names the BuildKit container it ran in.
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

FARM = str(Path(sys.executable).with_name("farm"))
DOCKERFILE = """FROM {base}
ARG NONCE
ARG PAUSE
RUN echo "$NONCE" > /nonce && sleep "${{PAUSE:-0}}" && cat /proc/self/cgroup > /built-cgroup
"""


@pytest.fixture
def node3(lab) -> str:
    """node3's engine; fails (never skips) when `lab/lab.sh up node3` has not been run in CI."""
    done = subprocess.run(["docker", "-H", lab.node3, "version"], capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        message = f"node3 does not answer at {lab.node3}: run `lab/lab.sh up node3`"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return lab.node3


class PoolFarm:
    """A farm file with an amd64 node and an arm64 pool, a private Docker config, the real `farm`."""

    def __init__(self, lab, tmp: Path, docker_config: Path, builder: str, repo: str, pool: list[dict]) -> None:
        self.lab, self.tmp, self.builder, self.repo = lab, tmp, builder, repo
        self.env = {**os.environ, **lab.env, "DOCKER_CONFIG": str(docker_config), "NO_COLOR": "1"}
        self.docker_config = docker_config
        (tmp / "app").mkdir(exist_ok=True)
        (tmp / "app" / "Dockerfile").write_text(DOCKERFILE.format(base=lab.base))
        data = lab.farm_data(builder)
        data["node"] = [
            {"name": "amd", "endpoint": lab.node1, "platforms": ["linux/amd64"]},
            *[{**n, "platforms": ["linux/arm64"]} for n in pool],
        ]
        data["target"] = [
            {
                "name": "app",
                "context": "app",
                "platforms": ["linux/amd64", "linux/arm64"],
                "tags": [f"{repo}:latest"],
            },
            {"name": "amd-only", "context": "app", "platforms": ["linux/amd64"], "tags": [f"{repo}-amd:latest"]},
        ]
        self.file = tmp / "farm.toml"
        self.file.write_text(tomli_w.dumps(data))
        self.nonce = 0

    def run(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [FARM, *args, "-f", str(self.file)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.tmp,
        )

    def up(self) -> subprocess.CompletedProcess:
        done = self.run("up")
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def status(self) -> dict:
        """`farm status --json`; its exit code says whether every node runs (0) or one is down (3)."""
        done = self.run("status", "--json")
        data = json.loads(done.stdout)["result"]
        down = [n["name"] for n in data["nodes"] if n["status"] not in ("running", "not observed")]
        assert done.returncode == (3 if down else 0), done.stderr
        return data

    def build_args(self, *targets: str, pause: int = 0) -> list[str]:
        self.nonce += 1  # a fresh RUN each build: the step really runs on the node it names
        return [
            "build",
            *(targets or ("app",)),
            "--json",
            "--progress",
            "plain",
            "--build-arg",
            f"NONCE={self.builder}-{self.nonce}",
            "--build-arg",
            f"PAUSE={pause}",
        ]

    def build(self, *targets: str) -> subprocess.CompletedProcess:
        return self.run(*self.build_args(*targets))

    def container_id(self, node: str, host: str) -> str:
        done = subprocess.run(
            ["docker", "-H", host, "inspect", "-f", "{{.Id}}", f"buildx_buildkit_{self.builder}-{node}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def built_in(self, digest: str) -> str:
        """The cgroup the arm64 variant's RUN step ran in (read by running the variant)."""
        done = subprocess.run(
            ["docker", "-H", self.lab.node1, "run", "--rm", "--platform", "linux/arm64", f"{self.repo}@{digest}"]
            + ["cat", "/built-cgroup"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        # the pulled variant is the test's: leave node1's image store as it was
        subprocess.run(["docker", "-H", self.lab.node1, "rmi", "-f", f"{self.repo}@{digest}"], capture_output=True)
        return done.stdout

    def pushed_platforms(self, tag: str = "latest") -> set[str]:
        done = self.run_plain("inspect", f"{self.repo}:{tag}", "--json")
        assert done.returncode == 0, done.stderr
        return {v["platform"] for v in json.loads(done.stdout)["result"]["variants"] if not v.get("is_attestation")}

    def run_plain(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([FARM, *args], env=self.env, capture_output=True, text=True, timeout=120)


def _arm64(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (target,) = json.loads(result.stdout)["result"]["targets"]
    assert target["ok"]
    return next(p for p in target["platforms"] if p["platform"] == "linux/arm64")


def _pool(status: dict, platform: str = "linux/arm64") -> dict:
    return next(p for p in status["pools"] if p["platform"] == platform)


# ------------------------------------------------------------------ node2 (ssh) > node3 (unix)
def test_failover_to_the_standby_then_failback(lab, node3, sshd, docker_config, unique_name, registry, tmp_path):
    door = sshd(lab.node2_socket)
    farm = PoolFarm(
        lab,
        tmp_path,
        docker_config,
        unique_name,
        registry.repo(f"pool-{unique_name}"),
        [{"name": "arm2", "endpoint": door.endpoint}, {"name": "arm3", "endpoint": node3}],
    )
    farm.up()
    pool = _pool(farm.status())
    assert (pool["active"], pool["standby"], pool["down"]) == ("arm2", ["arm3"], [])

    # All healthy: arm64 builds on the preferred node, in its BuildKit container.
    arm = _arm64(farm.build())
    assert arm["node"] == "arm2"
    assert farm.container_id("arm2", lab.node2_socket) in farm.built_in(arm["digest"])

    # The preferred node's sshd stops: the build moves the pin by itself and builds on the standby.
    door.stop()
    t0 = time.monotonic()
    result = farm.build()
    arm = _arm64(result)
    assert arm["node"] == "arm3", result.stderr
    cgroup = farm.built_in(arm["digest"])
    assert farm.container_id("arm3", node3) in cgroup and farm.container_id("arm2", lab.node2_socket) not in cgroup
    assert farm.pushed_platforms() == {"linux/amd64", "linux/arm64"}  # the tag is complete
    assert "pool: ~ node arm3" in result.stderr, result.stderr
    failover_s = time.monotonic() - t0

    # `up` and `status` with the pool node down: reported, a warning, exit 0; `up` twice plans nothing.
    done = farm.up()
    assert 'warning: node "arm2" is unreachable' in done.stderr and "linux/arm64 on arm3" in done.stderr
    again = farm.up()
    assert "No changes: the farm matches the file" in again.stdout, again.stdout
    status = farm.status()
    assert {n["name"]: n["status"] for n in status["nodes"]}["arm2"] == "unreachable"
    pool = _pool(status)
    assert (pool["active"], pool["standby"], pool["down"]) == ("arm3", [], ["arm2"])

    # Failback: the preferred node answers again; the next build rejoins it and builds there.
    door.start()
    result = farm.build()
    arm = _arm64(result)
    assert arm["node"] == "arm2", result.stderr
    assert farm.container_id("arm2", lab.node2_socket) in farm.built_in(arm["digest"])
    assert "No changes" in farm.run("plan").stdout
    assert failover_s < 120


def test_a_node_killed_mid_build_is_retried_once_on_the_standby(
    lab, node3, sshd, docker_config, unique_name, registry, tmp_path
):
    # arm2 is reached through an sshd of its own, so the test can take the whole node away.
    door = sshd(lab.node2_socket)
    farm = PoolFarm(
        lab,
        tmp_path,
        docker_config,
        unique_name,
        registry.repo(f"pool-{unique_name}"),
        [{"name": "arm2", "endpoint": door.endpoint}, {"name": "arm3", "endpoint": node3}],
    )
    farm.up()
    proc = subprocess.Popen(
        [FARM, *farm.build_args(pause=8), "-f", str(farm.file)],
        env=farm.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    # Wait until arm64's RUN step runs on arm2, then kill arm2's BuildKit container.
    deadline = time.monotonic() + 120
    seen = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if "[linux/arm64 2/2] RUN" in line or ("linux/arm64" in line and "RUN echo" in line):
            break
        assert time.monotonic() < deadline, "".join(seen[-20:])
    time.sleep(2)
    # The node dies: first its engine stops answering (no new connection can restart
    # anything there), then its BuildKit goes. (A killed container alone is restarted by
    # buildx on the next build, on the same node: no failover needed.)
    door.stop()
    killed = subprocess.run(
        ["docker", "-H", lab.node2_socket, "kill", f"buildx_buildkit_{unique_name}-arm2"],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == 0, killed.stderr
    out, err = proc.communicate(timeout=600)
    err = "".join(seen) + err
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    arm = _arm64(result)
    assert result.returncode == 0, err[-3000:]
    assert farm.pushed_platforms() == {"linux/amd64", "linux/arm64"}  # never a partial tag
    # Two outcomes are right, and which one comes is a race: buildx may start the killed
    # container again over the ssh session it already holds (the build then finishes on
    # arm2), or the build fails and the farm retries it on the standby. Either way the
    # report names the node whose BuildKit container really ran the step.
    built_on = "arm3" if "stopped during the build; retrying linux/arm64 once" in err else "arm2"
    assert arm["node"] == built_on, err[-3000:]
    endpoint = node3 if built_on == "arm3" else lab.node2_socket
    assert farm.container_id(built_on, endpoint) in farm.built_in(arm["digest"])


def test_every_pool_node_down_fails_and_publishes_nothing(
    lab, node3, sshd, docker_config, unique_name, registry, tmp_path
):
    door2, door3 = sshd(lab.node2_socket), sshd(node3)
    repo = registry.repo(f"pool-{unique_name}")
    farm = PoolFarm(
        lab,
        tmp_path,
        docker_config,
        unique_name,
        repo,
        [{"name": "arm2", "endpoint": door2.endpoint}, {"name": "arm3", "endpoint": door3.endpoint}],
    )
    farm.up()
    door2.stop()
    door3.stop()
    result = farm.build()
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'no healthy node for linux/arm64: "arm2" (unreachable' in result.stderr and '"arm3"' in result.stderr
    assert "Traceback" not in result.stderr
    assert registry.tags(repo.split("/", 1)[1]) == []  # nothing published
    up = farm.run("up")
    assert up.returncode == 1 and "no healthy node for linux/arm64" in up.stderr

    # A build that needs no arm64 is not stopped by them.
    result = farm.build("amd-only")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert registry.tags(repo.split("/", 1)[1]) == []  # still nothing under the pool target's name
    assert registry.tags(repo.split("/", 1)[1] + "-amd") == ["latest"]
    # ...nor with --up, which converges the farm for what the build needs
    result = farm.run(*farm.build_args("amd-only"), "--up")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


# ------------------------------------------------------------------ node2 over ssh > node2 over tcp+TLS
def test_a_pool_of_one_engine_over_ssh_and_tcp_tls(lab, sshd, docker_config, unique_name, registry, tmp_path):
    door = sshd(lab.node2_socket)
    tls = {"ca": str(lab.ca), "cert": str(lab.client_cert), "key": str(lab.client_key)}
    farm = PoolFarm(
        lab,
        tmp_path,
        docker_config,
        unique_name,
        registry.repo(f"pool-{unique_name}"),
        [{"name": "viassh", "endpoint": door.endpoint}, {"name": "viatcp", "endpoint": lab.node2_tcp, "tls": tls}],
    )
    farm.up()
    assert _arm64(farm.build())["node"] == "viassh"
    door.stop()
    arm = _arm64(farm.build())
    assert arm["node"] == "viatcp"
    # the same engine, but the standby's own BuildKit container built it
    cgroup = farm.built_in(arm["digest"])
    assert farm.container_id("viatcp", lab.node2_socket) in cgroup
    assert farm.container_id("viassh", lab.node2_socket) not in cgroup


def test_up_from_nothing_with_the_preferred_node_down(lab, node3, docker_config, unique_name, registry, tmp_path):
    with socket.socket() as s:  # a port nothing listens on: an ssh node that is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    farm = PoolFarm(
        lab,
        tmp_path,
        docker_config,
        unique_name,
        registry.repo(f"pool-{unique_name}"),
        [{"name": "arm2", "endpoint": f"ssh://farm@127.0.0.1:{port}"}, {"name": "arm3", "endpoint": node3}],
    )
    done = farm.up()  # the down node does not join (buildx would roll the whole append back)
    assert "= node arm2" in done.stdout and 'warning: node "arm2" is unreachable' in done.stderr
    assert "No changes" in farm.up().stdout
    pool = _pool(farm.status())
    assert (pool["active"], pool["down"]) == ("arm3", ["arm2"])
    assert _arm64(farm.build())["node"] == "arm3"
