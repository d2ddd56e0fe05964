"""Apply, without Docker: each plan step becomes the buildx command it must, and a failed
command leaves buildx's instance file as it was. The docker CLI is replaced at the one door
(conftest's `fake_docker`), playing buildx's part on the instance file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
from observed import converged_state

from buildkit_farm.docker import DockerPaths
from buildkit_farm.errors import ApplyError
from buildkit_farm.farmfile.desired import BuilderSettings, Desired, NodeSettings
from buildkit_farm.reconcile import apply
from buildkit_farm.reconcile.plan import make_plan
from buildkit_farm.reconcile.record import FarmRecord, RecordEntry, read_record

OPTS = (("network", "host"),)
N1 = NodeSettings(
    "node1", "node1", "unix:///var/run/docker.sock", None, True, ("linux/amd64",), "docker-container", OPTS, None, None
)
N2 = NodeSettings(
    "node2", "node2", "ssh://farm@127.0.0.1:2222", None, True, ("linux/arm64",), "docker-container", OPTS, None, None
)


def desired(*nodes: NodeSettings) -> Desired:
    return Desired(Path("farm.toml"), BuilderSettings("ch16", "docker-container"), tuple(nodes))


def _buildx_writes_its_instance_file(paths: DockerPaths, args: list[str]) -> None:
    # buildx rewrites its instance file before it contacts the nodes
    instance = paths.instance_file("ch16")
    instance.parent.mkdir(parents=True, exist_ok=True)
    instance.write_text(json.dumps({"Name": "ch16", "Driver": "docker-container", "Nodes": []}))


@pytest.fixture
def fake(fake_docker):
    """Every docker argv recorded; `buildx create` rewrites the instance file as buildx does."""
    return fake_docker.on("buildx", "create", effect=_buildx_writes_its_instance_file)


@pytest.fixture
def paths(tmp_path: Path) -> DockerPaths:
    return DockerPaths(tmp_path / "dc", tmp_path / "dc" / "buildx", True)


def observed(paths: DockerPaths, *nodes: NodeSettings):
    return replace(converged_state(*nodes), paths=paths)


def test_an_in_place_platform_change_is_one_append_with_the_new_pins(paths, fake):
    wanted = replace(N2, platforms=("linux/arm64", "linux/arm/v7"))
    plan = make_plan(desired(N1, wanted), observed(paths, N1, N2))
    paths.instance_file("ch16").parent.mkdir(parents=True)
    paths.instance_file("ch16").write_text("{}")
    touched = apply.apply_plan(plan, paths)
    assert fake.calls == [
        [
            "buildx", "create", "--name", "ch16", "--node", "ch16-node2", "--append",
            "--driver", "docker-container", "--platform", "linux/arm64", "--platform", "linux/arm/v7",
            "--driver-opt", "network=host",
            # the node keeps the stamp its running container carries (what every runner reads back)
            "--driver-opt", f"env.BUILDKIT_FARM_SETTINGS={N2.fingerprint}",
            "--driver-opt", "env.BUILDKIT_FARM_NODE=ch16/node2", "--driver-opt", "env.BUILDKIT_FARM_VERSION=0.1.0",
            "--driver-opt", "env.BUILDKIT_FARM_APPLIED=2026-12-01T00:00:00Z",
            "node2",
        ]
    ]  # fmt: skip
    assert touched == frozenset()  # no BuildKit was (re)created: nothing to bootstrap


def test_a_new_node_with_a_buildkitd_config_joins_and_the_farm_bootstraps(paths, fake, monkeypatch):
    n3 = replace(N2, name="node3", context="node3", buildkitd_config="debug = true\n")
    plan = make_plan(desired(N1, N2, n3), observed(paths, N1, N2))
    calls_before = len(fake.calls)
    # the new context's own step is not what this test is about: skip it
    monkeypatch.setitem(apply._HANDLERS, ("context", apply.Action.CREATE), lambda run, step: None)
    touched = apply.apply_plan(plan, paths)
    join = fake.calls[calls_before]
    config = Path(join[join.index("--buildkitd-config") + 1])
    assert config.read_text() == "debug = true\n"  # written for buildx from the text loaded with the file
    assert join[-1] == "node3" and "ch16-node3" in join
    assert fake.calls[-1] == ["buildx", "inspect", "--bootstrap", "ch16"]
    assert touched == frozenset({"ch16-node3"})


def test_a_failed_append_puts_the_instance_file_back_and_names_the_node(paths, fake_docker):
    stderr = "ERROR: failed to initialize builder ch16 (ch16-node2): ssh: connect to host 127.0.0.1 port 2222: refused"
    fake_docker.on("--append", returncode=1, stderr=stderr, effect=_buildx_writes_its_instance_file)
    instance = paths.instance_file("ch16")
    instance.parent.mkdir(parents=True)
    instance.write_bytes(b'{"Name":"ch16","as":"before"}')
    plan = make_plan(desired(N1, replace(N2, platforms=("linux/arm/v7",))), observed(paths, N1, N2))
    with pytest.raises(ApplyError) as caught:
        apply.apply_plan(plan, paths)
    assert instance.read_bytes() == b'{"Name":"ch16","as":"before"}'
    assert 'node "node2" did not answer' in caught.value.message
    assert "instance file was restored" in caught.value.hint and "sshd" in caught.value.hint
    # the copy from before the whole apply is kept beside the record
    assert (paths.farm_dir / "ch16.instance.bak").read_bytes() == b'{"Name":"ch16","as":"before"}'


def test_the_record_keeps_settings_only_for_containers_it_knows(paths):
    state = observed(paths, N1, N2)
    old = FarmRecord("ch16", MappingProxyType({"ch16-node1": RecordEntry("id-node1", "old-settings")}))
    # containers made before stamps, as observe gives them: settings from the record for the same id only
    unstamped = {
        "ch16-node1": replace(state.buildkits["ch16-node1"], stamp=None, settings="old-settings"),
        "ch16-node2": replace(state.buildkits["ch16-node2"], stamp=None, settings=None),
    }
    state = replace(state, record=old, buildkits=MappingProxyType(unstamped))
    record = apply.record_buildkits(paths, desired(N1, N2), state, frozenset({"ch16-node2"}))
    assert record.nodes["ch16-node1"].settings == "old-settings"  # same container: kept
    assert record.nodes["ch16-node2"].settings == N2.fingerprint  # created by this run: the file's
    assert read_record(paths, "ch16") == record
    replaced = replace(state.buildkits["ch16-node1"], container_id="another", settings=None)
    state = replace(state, buildkits=MappingProxyType({**state.buildkits, "ch16-node1": replaced}))
    assert "ch16-node1" not in apply.record_buildkits(paths, desired(N1, N2), state, frozenset()).nodes
    # a stamped container is known to every runner, whoever made it
    fresh = replace(observed(paths, N1, N2), record=None)
    assert apply.record_buildkits(paths, desired(N1, N2), fresh, frozenset()).nodes["ch16-node1"].settings == (
        N1.fingerprint
    )
