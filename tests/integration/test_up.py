"""`farm up`, `plan`, `status`, `down` on the real lab: two engines (node2 over ssh), buildx, BuildKit.

Every test writes the lab's nodes under a unique builder name into its own farm file and
uses a private Docker config, so the tests share the engines without sharing a builder.
A `docker` shim placed first on PATH logs every docker CLI invocation `farm` makes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tomli_w

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FARM = str(Path(sys.executable).with_name("farm"))
READ_ONLY = ("container inspect", "exec ", "context inspect", "buildx inspect", "buildx ls", "version", "info")


class Farm:
    """One farm under test: its file, its private Docker config, its docker-call log."""

    def __init__(self, tmp: Path, docker_config: Path, builder: str, data: dict) -> None:
        self.tmp, self.docker_config, self.builder = tmp, docker_config, builder
        self.file = tmp / "farm.toml"
        self.log = tmp / "docker-calls.log"
        shim = tmp / "shim"
        shim.mkdir(exist_ok=True)
        real = shutil.which("docker")
        (shim / "docker").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{self.log}"\nexec "{real}" "$@"\n')
        (shim / "docker").chmod(0o755)
        self.env = {
            **os.environ,
            "DOCKER_CONFIG": str(docker_config),
            "PATH": f"{shim}:{os.environ['PATH']}",
            "NO_COLOR": "1",
        }
        self.env.pop("BUILDX_CONFIG", None)
        self.data = data  # the lab's farm under `builder`
        self.data.pop("target", None)
        self.write()

    def node(self, name: str) -> dict:
        return next(n for n in self.data["node"] if n["name"] == name)

    def write(self) -> None:
        self.file.write_text(tomli_w.dumps(self.data))

    def run(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [FARM, *args, "-f", str(self.file)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.tmp,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        result = self.run(*args)
        assert result.returncode == 0, f"farm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def clear_calls(self) -> None:
        self.log.unlink(missing_ok=True)

    def docker(self, *args: str, context: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["docker", "--config", str(self.docker_config), *(["--context", context] if context else []), *args]
        result = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=300)
        if check:
            assert result.returncode == 0, f"{cmd}: {result.stderr}"
        return result

    def container_id(self, node: str) -> str | None:
        name = f"buildx_buildkit_{self.builder}-{node}".lower()
        r = self.docker("container", "inspect", "--format", "{{.Id}}", name, context=node, check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def instance(self) -> dict:
        return json.loads((self.docker_config / "buildx" / "instances" / self.builder.lower()).read_text())

    def status(self) -> dict:
        return json.loads(self.ok("status", "--json").stdout)["result"]


@pytest.fixture
def farm(lab, docker_config, unique_name, tmp_path):
    builder = unique_name("up")
    f = Farm(tmp_path, Path(docker_config), builder, lab.farm_data(builder))
    f.node2_socket = lab.node2_socket
    yield f
    # Never leave BuildKit containers or volumes behind on the shared engines.
    f.run("down")


def _only_read_only(calls: list[str]) -> list[str]:
    return [c for c in calls if not any(v in c for v in READ_ONLY)]


def test_up_from_nothing_then_again_changes_nothing(farm, buildx):
    first = farm.ok("up")
    assert "+ builder" in first.stdout and "+ context node1" in first.stdout
    status = farm.status()
    assert status["buildx"].startswith(buildx.version + ".")  # the buildx this run tests, as farm reads it
    by_name = {n["name"]: n for n in status["nodes"]}
    assert {n["status"] for n in status["nodes"]} == {"running"}
    assert all(n["buildkit_version"] for n in status["nodes"])
    for name, node in by_name.items():
        assert set(node["pinned"]) <= set(node["detected"]), name
    assert set(by_name["node2"]["pinned"]) <= set(by_name["node2"]["emulated"])  # QEMU on an amd64 host

    farm.clear_calls()
    again = farm.ok("up")
    assert "No changes" in again.stdout
    calls = farm.calls()
    assert _only_read_only(calls) == [], calls
    assert len(calls) <= 4, calls


def test_changing_node2_platforms_updates_only_node2(farm):
    farm.ok("up")
    before = {n: farm.container_id(n) for n in ("node1", "node2")}
    farm.node("node2")["platforms"] = ["linux/arm64"]
    farm.write()
    plan = farm.ok("plan", "--json")
    changes = [
        (s["symbol"], s["kind"], s["name"])
        for s in json.loads(plan.stdout)["result"]["steps"]
        if s["action"] != "no-op"
    ]
    assert changes == [("~", "node", "node2")]
    farm.ok("up")
    assert {n: farm.container_id(n) for n in ("node1", "node2")} == before
    nodes = {n["Name"]: n for n in farm.instance()["Nodes"]}
    assert [p["architecture"] for p in nodes[f"{farm.builder}-node2"]["Platforms"]] == ["arm64"]
    assert [p["architecture"] for p in nodes[f"{farm.builder}-node1"]["Platforms"]] == ["amd64"]
    assert "No changes" in farm.ok("up").stdout


def test_settings_change_restarts_only_that_node_and_applies(farm):
    farm.ok("up")
    before = {n: farm.container_id(n) for n in ("node1", "node2")}
    farm.node("node2")["buildkitd_flags"] = "--debug"
    farm.write()
    farm.ok("up")
    after = {n: farm.container_id(n) for n in ("node1", "node2")}
    assert after["node1"] == before["node1"]
    assert after["node2"] != before["node2"]
    cmd = farm.docker(
        "container",
        "inspect",
        "--format",
        "{{json .Config.Cmd}}",
        f"buildx_buildkit_{farm.builder}-node2",
        context="node2",
    ).stdout
    assert "--debug" in json.loads(cmd)
    volumes = farm.docker("volume", "ls", "--format", "{{.Name}}", context="node2").stdout.split()
    assert f"buildx_buildkit_{farm.builder}-node2_state" in volumes


def test_removed_node_leaves_and_its_container_goes(farm):
    farm.ok("up")
    node1_id = farm.container_id("node1")
    farm.data["node"] = [farm.node("node1")]
    farm.write()
    out = farm.ok("up").stdout
    assert "- node node2" in out
    assert [n["Name"] for n in farm.instance()["Nodes"]] == [f"{farm.builder}-node1"]
    assert farm.container_id("node1") == node1_id
    contexts = farm.docker("context", "ls", "--format", "{{.Name}}").stdout.split()
    assert "node1" in contexts and "node2" not in contexts  # the farm made it for node2 only
    r = subprocess.run(
        ["docker", "-H", farm.node2_socket, "container", "inspect", f"buildx_buildkit_{farm.builder}-node2"],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "no such" in r.stderr.lower()
    volumes = subprocess.run(
        ["docker", "-H", farm.node2_socket, "volume", "ls", "--format", "{{.Name}}"], capture_output=True, text=True
    ).stdout.split()
    assert f"buildx_buildkit_{farm.builder}-node2_state" in volumes  # state kept
    assert "No changes" in farm.ok("up").stdout


def test_unreachable_node2_is_a_clear_error_then_converges(farm, sshd, lab):
    # node2 through a private sshd (its own port): stopping it takes node2 away for this
    # farm alone, never for the tests running beside it on the lab's shared sshd.
    door = sshd(lab.node2_socket)
    farm.node("node2")["endpoint"] = door.endpoint
    farm.write()
    farm.ok("up")
    door.stop()
    try:
        failed = farm.run("up")
        assert failed.returncode == 1, failed.stdout + failed.stderr
        err = failed.stderr
        assert 'node "node2"' in err and door.endpoint in err and "hint:" in err, err
        assert "Traceback" not in err
        # node1 stays as it was: the instance file still lists both nodes with their platforms
        pins = {n["Name"]: n["Platforms"] for n in farm.instance()["Nodes"]}
        assert pins[f"{farm.builder}-node1"] and pins[f"{farm.builder}-node2"]
    finally:
        door.start()
    farm.ok("up")
    assert "No changes" in farm.ok("up").stdout


def test_sigkill_during_up_then_up_converges(farm):
    proc = subprocess.Popen(
        [FARM, "up", "-f", str(farm.file)],
        env=farm.env,
        cwd=farm.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    # Kill it once it has started changing things (the first buildx call), or after 3 s.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not any("buildx create" in c for c in farm.calls()):
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = json.loads(farm.ok("plan", "--json").stdout)["result"]
    assert not interrupted["converged"]  # it really was killed half-way
    farm.ok("up")
    assert "No changes" in farm.ok("up").stdout
    assert {n["status"] for n in farm.status()["nodes"]} == {"running"}


def test_sigint_during_up_then_up_converges(farm):
    proc = subprocess.Popen(
        [FARM, "up", "-f", str(farm.file)],
        env=farm.env,
        cwd=farm.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not any("buildx" in c for c in farm.calls()):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    farm.ok("up")
    assert "No changes" in farm.ok("up").stdout


def test_down_leaves_foreign_contexts_and_builders(farm):
    farm.docker("context", "create", "foreign", "--docker", "host=unix:///var/run/docker.sock")
    foreign_builder = f"{farm.builder}-foreign"
    farm.docker("buildx", "create", "--name", foreign_builder, "--driver", "docker-container", "foreign")
    farm.ok("up")
    out = farm.ok("down").stdout
    assert "- builder" in out
    contexts = farm.docker("context", "ls", "--format", "{{.Name}}").stdout.split()
    assert "foreign" in contexts and "node1" not in contexts and "node2" not in contexts
    assert (farm.docker_config / "buildx" / "instances" / foreign_builder).exists()
    assert not (farm.docker_config / "buildx" / "instances" / farm.builder.lower()).exists()
    assert farm.container_id("node1") is None
    farm.docker("buildx", "rm", foreign_builder)


def test_foreign_context_with_a_nodes_name_stops_with_a_hint(farm):
    farm.docker("context", "create", "node1", "--docker", "host=unix:///var/run/docker.sock")
    result = farm.run("up")
    assert result.returncode == 2
    assert 'context "node1"' in result.stderr and "hint:" in result.stderr
    metadata = farm.docker("context", "inspect", "node1", "--format", "{{json .Metadata}}").stdout
    assert "buildkit-farm" not in metadata  # untouched


def test_lock_two_ups_never_interleave(farm):
    from buildkit_farm.reconcile import lock

    # A held lock makes `farm up` wait, then give up with a message.
    with lock.hold(farm.docker_config / "buildkit-farm"):
        result = farm.run("up", "--lock-timeout", "1")
    assert result.returncode == 1
    assert "another farm run" in result.stderr and "hint:" in result.stderr

    # Two real runs at once: both succeed, one after the other, and the farm converges.
    results = []
    threads = [threading.Thread(target=lambda: results.append(farm.run("up"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert any("No changes" in r.stdout for r in results)
    assert any("waiting for another farm run" in r.stderr for r in results)


def test_failed_append_restores_the_instance_file(farm):
    farm.ok("up")
    before = farm.instance()["Nodes"]
    farm.data["node"].append(
        {"name": "node3", "endpoint": "unix:///nonexistent/docker.sock", "platforms": ["linux/s390x"]}
    )
    farm.write()
    result = farm.run("up")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "+ node node3 failed" in result.stderr and "instance file was restored" in result.stderr
    # buildx's own rollback would have dropped every node's pinned platforms; ours keeps them
    assert farm.instance()["Nodes"] == before
    farm.data["node"].pop()
    farm.write()
    out = farm.ok("up").stdout
    assert "- context node3" in out
    assert "No changes" in farm.ok("up").stdout


def test_down_keep_state_keeps_the_volumes(farm):
    farm.ok("up")
    farm.ok("down", "--keep-state")
    volumes = farm.docker("volume", "ls", "--format", "{{.Name}}", context=None).stdout.split()
    assert f"buildx_buildkit_{farm.builder}-node1_state" in volumes
    assert farm.container_id("node1") is None
    farm.docker("volume", "rm", f"buildx_buildkit_{farm.builder}-node1_state")
    subprocess.run(
        ["docker", "-H", farm.node2_socket, "volume", "rm", f"buildx_buildkit_{farm.builder}-node2_state"],
        capture_output=True,
    )


def test_ensure_converged_for_the_build(farm):
    from buildkit_farm.errors import NotConverged
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile.converge import ensure_converged

    config = load_config(farm.file)
    with pytest.raises(NotConverged) as err:
        ensure_converged(config.desired, docker_config=farm.docker_config)
    assert "+ builder" in err.value.message and "farm up" in err.value.hint
    status = ensure_converged(config.desired, docker_config=farm.docker_config, up=True)
    assert [n.status for n in status.nodes] == ["running", "running"]
    assert status.buildkits["node2"].version and "linux/arm64" in status.nodes[1].emulated
    again = ensure_converged(config.desired, docker_config=farm.docker_config)
    assert again.nodes == status.nodes


def test_changed_endpoint_updates_the_context_in_place_and_moves_the_buildkit(farm):
    farm.ok("up")
    node1_id = farm.container_id("node1")
    farm.node("node2")["endpoint"] = farm.node2_socket  # the same engine, reached without ssh
    farm.write()
    plan = json.loads(farm.ok("plan", "--json").stdout)["result"]
    changes = [(s["symbol"], s["kind"], s["name"]) for s in plan["steps"] if s["action"] != "no-op"]
    assert changes == [("~", "context", "node2"), ("~", "buildkit", "node2")]
    farm.ok("up")
    host = farm.docker("context", "inspect", "node2", "--format", "{{.Endpoints.docker.Host}}").stdout.strip()
    assert host == farm.node2_socket
    assert farm.container_id("node1") == node1_id
    assert farm.container_id("node2") is not None
    assert "No changes" in farm.ok("up").stdout


def test_buildx_config_is_respected(farm, tmp_path):
    farm.env["BUILDX_CONFIG"] = str(tmp_path / "buildx-elsewhere")
    farm.ok("up")
    assert (tmp_path / "buildx-elsewhere" / "instances" / farm.builder).is_file()
    assert not (farm.docker_config / "buildx" / "instances" / farm.builder).exists()
    assert "No changes" in farm.ok("up").stdout
    farm.ok("down")
    assert not (tmp_path / "buildx-elsewhere" / "instances" / farm.builder).exists()


def test_a_users_own_context_is_used_as_is_and_survives_down(farm):
    farm.docker(
        "context", "create", "mine", "--description", "my engine", "--docker", "host=unix:///var/run/docker.sock"
    )
    node1 = farm.node("node1")
    del node1["endpoint"]
    node1["context"] = "mine"
    farm.write()
    out = farm.ok("up").stdout
    assert "= context mine" in out and "the user's context, used as is" in out
    assert {n["Name"]: n["Endpoint"] for n in farm.instance()["Nodes"]}[f"{farm.builder}-node1"] == "mine"
    assert "No changes" in farm.ok("up").stdout
    farm.ok("down")
    contexts = farm.docker("context", "ls", "--format", "{{.Name}}").stdout.split()
    assert "mine" in contexts and "node2" not in contexts
    description = farm.docker("context", "inspect", "mine", "--format", "{{json .Metadata}}").stdout
    assert "my engine" in description


OLD_BUILDX = """#!/bin/sh
# A buildx plugin that says it is 0.12.1: the docker CLI's plugin protocol, nothing more.
case "$1" in
  docker-cli-plugin-metadata) echo '{"SchemaVersion":"0.1.0","Vendor":"Docker Inc.","Version":"v0.12.1"}' ;;
  *) echo "github.com/docker/buildx v0.12.1 0000000" ;;
esac
"""


def test_a_buildx_older_than_farm_supports_stops_every_command_with_exit_2(farm):
    """The real docker CLI with a plugin that answers as buildx 0.12.1 would (the lab has no such buildx)."""
    plugins = farm.tmp / "old-buildx"
    plugins.mkdir()
    (plugins / "docker-buildx").write_text(OLD_BUILDX)
    (plugins / "docker-buildx").chmod(0o755)
    (farm.docker_config / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [str(plugins)]}))
    assert "v0.12.1" in farm.docker("buildx", "version").stdout
    for command in ("up", "plan", "status", "down", "build"):
        result = farm.run(command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "buildx 0.12.1 is older than farm supports: it needs buildx 0.13 or newer" in result.stderr, command
        assert "Traceback" not in result.stderr
    assert not (farm.docker_config / "contexts").exists()  # nothing was changed
    assert not (farm.docker_config / "buildx" / "instances").exists()
