"""Plan details beyond the data-driven cases (plan_cases/): reasons, changes, errors, parsing. No Docker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
from observed import converged_state, owned_ctx, running, state, stored

from buildkit_farm.docker import DockerPaths, argv
from buildkit_farm.errors import EngineUnreachable, FarmError, ForeignResource
from buildkit_farm.farmfile.desired import BuilderSettings, Desired, NodeSettings
from buildkit_farm.reconcile.drift import buildx_flags, expected_cmd
from buildkit_farm.reconcile.observe import (
    OWNER_MARK,
    FarmRecord,
    ObservedBuildkit,
    ObservedContext,
    parse_buildkitd_version,
    parse_buildx_inspect,
    parse_instance,
    parse_workers,
)
from buildkit_farm.reconcile.plan import make_down_plan, make_plan
from buildkit_farm.reconcile.record import RecordEntry
from buildkit_farm.reconcile.status import NodeStatus, split_native, verify
from buildkit_farm.reconcile.steps import Action

HOST1 = "unix:///var/run/docker.sock"
HOST2 = "ssh://farm@127.0.0.1:2222"
OPTS = (("network", "host"),)


def node(name: str, endpoint: str | None, platforms=(), **kw) -> NodeSettings:
    base = dict(
        name=name,
        context=kw.pop("context", name),
        endpoint=endpoint,
        tls=None,
        owns_context=endpoint is not None,
        platforms=tuple(platforms),
        driver="docker-container",
        driver_opts=OPTS,
        buildkitd_flags=None,
        buildkitd_config=None,
    )
    base.update(kw)
    return NodeSettings(**base)


N1 = node("node1", HOST1, ["linux/amd64"])
N2 = node("node2", HOST2, ["linux/arm64", "linux/arm/v7"])


def cfg(*nodes: NodeSettings, driver: str = "docker-container") -> Desired:
    return Desired(file=Path("farm.toml"), builder=BuilderSettings("ch16", driver), nodes=tuple(nodes))


def lines(plan) -> list[str]:
    return [f"{s.action.symbol} {s.kind} {s.name}" for s in plan.steps]


N2_ARM64_ONLY = replace(N2, platforms=("linux/arm64",))
N1_MEM = replace(N1, driver_opts=(("memory", "2g"), ("network", "host")))
N1_NO_OPTS = replace(N1, driver_opts=())


def test_converged_plan_has_no_changes_and_each_noop_says_why():
    plan = make_plan(cfg(N1, N2), converged_state(N1, N2))
    assert plan.converged and plan.changes == ()
    reasons = {f"{s.kind} {s.name}": s.reason for s in plan.steps}
    assert reasons["node node1"] == "endpoint, platforms and settings match"
    assert "running BuildKit v0.13.2" in reasons["buildkit node2"]
    assert "owned by the farm" in reasons["context node1"]


def test_platform_change_is_an_in_place_append_naming_old_and_new():
    plan = make_plan(cfg(N1, N2_ARM64_ONLY), converged_state(N1, N2))
    (step,) = plan.changes
    assert (step.kind, step.mode, step.buildx_node) == ("node", "append", "ch16-node2")
    assert step.changes == (("platforms", "linux/arm64, linux/arm/v7", "linux/arm64"),)


def test_clearing_driver_opts_needs_a_rejoin():
    plan = make_plan(cfg(N1_NO_OPTS, N2), converged_state(N1, N2))
    modes = {(s.kind, s.name): s.mode for s in plan.changes}
    assert modes == {("node", "node1"): "rejoin", ("buildkit", "node1"): "restart"}


def test_all_nodes_renamed_replaces_the_builder():
    plan = make_plan(cfg(node("a", HOST1), node("b", HOST2)), converged_state(N1, N2))
    assert [s.action for s in plan.steps if s.kind == "builder"] == [Action.REPLACE]


def test_changed_buildkitd_config_updates_the_node_and_restarts_it():
    old = replace(N1, buildkitd_config='[registry."127.0.0.1:5443"]\nhttp = false\n')
    new = replace(N1, buildkitd_config='[registry."127.0.0.1:5443"]\nhttp = true\n')
    plan = make_plan(cfg(new), converged_state(old))
    assert lines(plan) == ["= context node1", "= builder ch16", "~ node node1", "~ buildkit node1"]


def test_foreign_context_stops_with_a_hint():
    observed = state(contexts=[ObservedContext("node1", HOST1, "my laptop", (), False)], builder=False, record=False)
    with pytest.raises(ForeignResource) as err:
        make_plan(cfg(N1), observed)
    assert 'context "node1"' in err.value.message and "not managed by buildkit-farm" in err.value.message
    assert 'context = "node1"' in err.value.hint


def test_foreign_builder_stops_with_a_hint():
    observed = replace(converged_state(N1), record=None)
    with pytest.raises(ForeignResource) as err:
        make_plan(cfg(N1), observed)
    assert "docker buildx rm ch16" in err.value.hint


def test_missing_user_context_is_an_error():
    with pytest.raises(FarmError, match='context "mine" does not exist'):
        make_plan(cfg(node("n1", None, context="mine")), state(builder=False, record=False))


def test_unreachable_node_names_node_endpoint_and_dockers_message():
    msg = "error during connect: ssh: connect to host 127.0.0.1 port 2222: Connection refused"
    observed = converged_state(N1, N2)
    bks = dict(observed.buildkits)
    bks["ch16-node2"] = ObservedBuildkit(node="ch16-node2", context="node2", status="unreachable", error=msg)
    with pytest.raises(EngineUnreachable) as err:
        make_plan(cfg(N1, N2), replace(observed, buildkits=MappingProxyType(bks)))
    e = err.value
    assert (e.node, e.endpoint) == ("node2", HOST2) and msg in e.message
    assert "sshd" in e.hint


def test_tls_change_shows_which_file_not_its_content():
    tls_ctx = ObservedContext(
        "node1", "tcp://h:2376", OWNER_MARK, (("ca", "aaa"), ("cert", "bbb"), ("key", "ccc")), False
    )
    from buildkit_farm.farmfile.desired import TLSFiles

    s = node(
        "node1", "tcp://h:2376", tls=TLSFiles(ca=Path("/t/ca.pem"), cert=Path("/t/cert.pem"), key=Path("/t/key.pem"))
    )
    observed = replace(
        converged_state(s),
        contexts=MappingProxyType({"node1": tls_ctx}),
        tls_digests=MappingProxyType({"/t/ca.pem": "aaa", "/t/cert.pem": "bbb", "/t/key.pem": "ddd"}),
    )
    (step,) = make_plan(cfg(s), observed).changes
    assert step.kind == "context" and step.action is Action.UPDATE
    text = repr(step.changes)
    assert "key" in text and "ccc" not in text and "ddd" not in text


def test_down_removes_only_what_the_farm_owns():
    mine = node("mine", None, context="mine")
    observed = state(
        contexts=[owned_ctx("node1", HOST1), owned_ctx("node2", HOST2), ObservedContext("mine", HOST1, "", (), False)],
        nodes=[stored(N1), stored(N2)],
        users={"node2": ("other",)},
    )
    plan = make_down_plan(cfg(N1, N2, mine), observed, keep_state=True)
    assert lines(plan) == ["- builder ch16", "- context node1", "= context node2", "= context mine"]
    assert plan.steps[0].mode == "keep-state"


def test_down_leaves_a_foreign_builder():
    plan = make_down_plan(cfg(N1), replace(converged_state(N1), record=None))
    assert lines(plan)[0] == "= builder ch16"


@pytest.mark.parametrize(
    "flags,opts,expected",
    [
        (None, OPTS, ("--allow-insecure-entitlement=network.host",)),
        ("--debug", (), ("--debug", "--allow-insecure-entitlement=network.host")),
        ("--allow-insecure-entitlement=security.insecure", (), ("--allow-insecure-entitlement=security.insecure",)),
        (
            "--allow-insecure-entitlement security.insecure",
            OPTS,
            ("--allow-insecure-entitlement", "security.insecure", "--allow-insecure-entitlement=network.host"),
        ),
    ],
)
def test_buildx_flags_mirror_buildx(flags, opts, expected):
    assert buildx_flags(node("n", HOST1, buildkitd_flags=flags, driver_opts=opts)) == expected


def test_fingerprint_ignores_platforms_but_not_settings():
    assert N2.fingerprint == N2_ARM64_ONLY.fingerprint
    assert N1.fingerprint != N1_MEM.fingerprint


@pytest.mark.parametrize(
    "detected,native,emulated",
    [
        (
            ("linux/amd64", "linux/amd64/v2", "linux/386", "linux/arm64", "linux/arm/v7"),
            ("linux/amd64", "linux/amd64/v2", "linux/386"),
            ("linux/arm64", "linux/arm/v7"),
        ),
        (("linux/arm64", "linux/arm/v7", "linux/amd64"), ("linux/arm64", "linux/arm/v7"), ("linux/amd64",)),
        ((), (), ()),
    ],
)
def test_split_native(detected, native, emulated):
    assert split_native(detected) == (native, emulated)


def _status(**kw) -> NodeStatus:
    base = dict(
        name="node2",
        buildx_node="ch16-node2",
        context="node2",
        endpoint=HOST2,
        status="running",
        version="v0.13.2",
        pinned=("linux/arm64",),
        detected=("linux/amd64", "linux/arm64"),
        native=("linux/amd64",),
        emulated=("linux/arm64",),
    )
    base.update(kw)
    return NodeStatus(**base)


def test_verify():
    assert verify((_status(),)) == ()
    assert verify((_status(pinned=("linux/s390x",)),)) == (
        'node "node2": pinned linux/s390x not among the platforms BuildKit detected (linux/amd64, linux/arm64)',
    )
    assert verify((_status(status="stopped"),)) == ('node "node2" is stopped',)


INSTANCE = (
    '{"Name":"ch16","Driver":"docker-container","Nodes":[{"Name":"ch16-node2","Endpoint":"node2",'
    '"Platforms":[{"architecture":"arm64","os":"linux"},{"architecture":"arm","os":"linux","variant":"v7"}],'
    '"DriverOpts":{"network":"host"},"Flags":["--allow-insecure-entitlement=network.host"],'
    '"Files":{"buildkitd.toml":"W3JlZ2lzdHJ5XQo="}}],"Dynamic":false}'
)


def test_parse_instance_file():
    b = parse_instance(INSTANCE)
    assert (b.name, b.driver) == ("ch16", "docker-container")
    (n,) = b.nodes
    assert n.platforms == ("linux/arm64", "linux/arm/v7")
    assert n.driver_opts == (("network", "host"),) and n.has_config
    assert n == stored(replace(N2, buildkitd_config="x"), stamp=None)  # no stamp in that file


def test_parse_buildkit_output():
    assert parse_buildkitd_version("buildkitd github.com/moby/buildkit v0.13.2 abc\n") == "v0.13.2"
    workers = (
        '[{"ID":"x","Platforms":[{"Architecture":"amd64","OS":"linux"},'
        '{"Architecture":"arm","OS":"linux","Variant":"v7"}]}]'
    )
    assert parse_workers(workers) == ("linux/amd64", "linux/arm/v7")


BUILDX_INSPECT = """Name:          farm
Driver:        remote
Last Activity: 2026-11-28 11:56:13 +0000 UTC

Nodes:
Name:             farm-r1
Endpoint:         tcp://127.0.0.1:1234
Status:           running
BuildKit version: v0.13.2
Platforms:        linux/amd64*, linux/amd64/v2, linux/386, linux/arm64
Labels:
 org.mobyproject.buildkit.worker.executor: oci
GC Policy rule#0:
 All:           false

Name:             farm-r2
Endpoint:         tcp://127.0.0.1:1235
Status:           running
BuildKit version: v0.13.2
Platforms:        linux/arm64*, linux/amd64, linux/amd64/v2, linux/riscv64

Name:      farm-r3
Endpoint:  tcp://127.0.0.1:1236
Status:    inactive
Platforms: linux/s390x*
"""


def test_buildx_inspect_gives_each_remote_node_its_status_version_and_platforms_native_first():
    nodes = parse_buildx_inspect(BUILDX_INSPECT)
    assert set(nodes) == {"farm-r1", "farm-r2", "farm-r3"}  # not the builder's own Name:
    r1, r2, r3 = nodes["farm-r1"], nodes["farm-r2"], nodes["farm-r3"]
    assert (r1["status"], r1["version"]) == ("running", "v0.13.2")
    # the pinned platform (marked *) goes back before the first of its architecture
    assert r1["platforms"] == ("linux/amd64", "linux/amd64/v2", "linux/386", "linux/arm64")
    assert r2["platforms"] == ("linux/amd64", "linux/amd64/v2", "linux/riscv64", "linux/arm64")
    assert split_native(r2["platforms"]) == (("linux/amd64", "linux/amd64/v2"), ("linux/riscv64", "linux/arm64"))
    assert r3["status"] == "inactive" and "version" not in r3 and r3["platforms"] == ("linux/s390x",)


def test_stopped_buildkit_with_unknown_settings_is_restarted_not_just_started():
    observed = state(
        contexts=[owned_ctx("node1", HOST1)],
        nodes=[stored(N1)],
        buildkits=[running(N1, "a", status="stopped", settings=None)],
    )
    (step,) = make_plan(cfg(N1), observed).changes
    assert (step.kind, step.mode) == ("buildkit", "restart")


def test_a_container_running_other_flags_than_recorded_is_restarted():
    observed = state(
        contexts=[owned_ctx("node1", HOST1)], nodes=[stored(N1)], buildkits=[running(N1, "a", cmd=("--debug",))]
    )
    (step,) = make_plan(cfg(N1), observed).changes
    assert (step.kind, step.mode) == ("buildkit", "restart")
    assert "buildkitd args --debug" in step.reason


def test_expected_cmd_puts_the_config_first():
    s = replace(N1, buildkitd_config="x = 1\n", buildkitd_flags="--debug")
    assert expected_cmd(s) == (
        "--config",
        "/etc/buildkit/buildkitd.toml",
        "--debug",
        "--allow-insecure-entitlement=network.host",
    )


def test_a_context_the_farm_made_for_a_removed_node_goes_after_the_node_leaves():
    observed = converged_state(N1, N2, record_contexts=("node1", "node2"))
    plan = make_plan(cfg(N1), observed)
    assert lines(plan) == [
        "= context node1",
        "= builder ch16",
        "- node node2",
        "= node node1",
        "- buildkit node2",
        "= buildkit node1",
        "- context node2",
    ]


def test_a_removed_nodes_context_used_by_another_builder_stays():
    observed = converged_state(N1, N2, record_contexts=("node1", "node2"), users={"node2": ("other",)})
    assert "- context node2" not in lines(make_plan(cfg(N1), observed))


def test_record_round_trips():
    rec = FarmRecord(
        builder="b",
        nodes=MappingProxyType({"b-n": RecordEntry("id", "fp", "t", "v1", ("linux/amd64",))}),
        contexts=("n",),
    )
    assert FarmRecord.from_json(rec.to_json()) == rec


def test_a_node_on_the_default_context_matches_its_stored_host():
    mine = node("local", None, context="default")
    observed = state(
        contexts=[ObservedContext("default", HOST1, "", (), False)],
        nodes=[stored(mine, endpoint=HOST1)],
        buildkits=[running(mine, "a")],
    )
    assert make_plan(cfg(mine), observed).converged


def test_prefetch_guesses_exactly_the_inspects_observe_makes(tmp_path, fake_docker):
    """A converged `farm up` overlaps its per-engine inspects with loading the file; the
    guess from raw TOML must produce the very command lines `observe` runs."""
    from buildkit_farm.reconcile import observe as st

    started = fake_docker.argvs
    farm_file = tmp_path / "farm.toml"
    farm_file.write_text(
        '[builder]\nname = "Lab"\n[[node]]\nname = "node1"\nendpoint = "unix:///var/run/docker.sock"\n'
        '[[node]]\nname = "node2"\ncontext = "mine"\n'
    )
    paths = DockerPaths(tmp_path / "dc", tmp_path / "dc" / "buildx", True)
    prefetch = st.Prefetch.for_file(paths, farm_file)
    expected = [
        # no context node1 yet (a fresh runner): observe reads through the endpoint, and so does the guess
        argv(paths, "unix:///var/run/docker.sock")
        + [
            "container",
            "inspect",
            "--format",
            "{{json .}}",
            "buildx_buildkit_lab-node1",
            "buildkit-farm-drain_lab-node1",
        ],
        argv(paths, "mine")
        + [
            "container",
            "inspect",
            "--format",
            "{{json .}}",
            "buildx_buildkit_lab-node2",
            "buildkit-farm-drain_lab-node2",
        ],
    ]
    assert started == expected
    assert st.docker_read(paths, "mine", expected[1][-6:], prefetch).returncode == 0  # taken from the prefetch
    assert prefetch.take(paths, "mine", expected[1][-6:]) is None  # each read is used once
    prefetch.discard()
    assert prefetch.take(paths, "unix:///var/run/docker.sock", expected[0][-6:]) is None


def test_prefetch_reads_a_fresh_tls_node_with_the_files_observe_resolves(tmp_path, fake_docker):
    """TLS paths are relative to the farm file's folder: the guess from raw TOML gives the very
    files `load_config` resolves, and a read made with other TLS files is never taken."""
    from buildkit_farm.farmfile.load import load_config
    from buildkit_farm.reconcile import observe as st

    (tmp_path / "farm" / "certs").mkdir(parents=True)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / "farm" / "certs" / name).write_text("-")
    farm_file = tmp_path / "farm" / "farm.toml"
    farm_file.write_text(
        '[builder]\nname = "Lab"\n[[node]]\nname = "arm"\nendpoint = "tcp://127.0.0.1:2376"\n'
        'tls = { ca = "certs/ca.pem", cert = "./certs/cert.pem", key = "certs/../certs/key.pem" }\n'
    )
    paths = DockerPaths(tmp_path / "dc", tmp_path / "dc" / "buildx", True)
    prefetch = st.Prefetch.for_file(paths, farm_file)
    observed = paths.with_host_tls(st.host_tls(load_config(farm_file).desired))  # what observe reads with
    assert prefetch.paths == observed and observed.tls_of("tcp://127.0.0.1:2376").ca == tmp_path / "farm/certs/ca.pem"
    args = ["container", "inspect", "--format", "{{json .}}", "buildx_buildkit_lab-arm", "buildkit-farm-drain_lab-arm"]
    assert fake_docker.argvs == [argv(observed, "tcp://127.0.0.1:2376") + args]
    assert "--tlsverify" in fake_docker.argvs[0]
    assert prefetch.take(paths, "tcp://127.0.0.1:2376", args) is None  # not with other TLS files (none)
    assert prefetch.take(observed, "tcp://127.0.0.1:2376", args) is not None
