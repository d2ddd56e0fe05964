"""One farm, many runners, without Docker: the stamp read back from a container's inspect data,
a container the farm did not create, a fresh runner's plan, rollout, drain, running builds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from observed import converged_state, running, stamp_of, state
from test_plan import N1, N2, cfg, lines, node

from buildkit_farm.docker_paths import DockerPaths
from buildkit_farm.farmfile.desired import NodeSettings, TLSFiles
from buildkit_farm.reconcile import holds, stamp
from buildkit_farm.reconcile.drift import expected_cmd, runs_differently, without_buildx_additions
from buildkit_farm.reconcile.observe import buildkit_from_inspect, observe
from buildkit_farm.reconcile.plan import make_plan
from buildkit_farm.reconcile.pools import pool_view
from buildkit_farm.reconcile.readouts import parse_running_builds
from buildkit_farm.reconcile.render import plan_summary
from buildkit_farm.reconcile.steps import Action

# What `docker container inspect --format '{{json .}}'` gives for a farm-made BuildKit container (trimmed).
STAMPED = {
    "Id": "c0ffee",
    "Name": "/buildx_buildkit_ch16-node1",
    "Image": "sha256:1234",
    "State": {"Running": True, "StartedAt": "2026-12-07T01:17:04Z"},
    "Config": {
        "Image": "moby/buildkit:buildx-stable-1",
        "Cmd": ["--debug", "--allow-insecure-entitlement=network.host"],
        "Env": [
            "BUILDKIT_FARM_APPLIED=2026-12-07T01:20:00Z",
            "BUILDKIT_FARM_NODE=ch16/node1",
            "BUILDKIT_FARM_SETTINGS=abc123",
            "BUILDKIT_FARM_SUPERSEDED=old1@2026-12-01T00:00:00Z old0@2026-11-01T00:00:00Z",
            "BUILDKIT_FARM_VERSION=0.1.0",
            "PATH=/usr/bin:/bin",
        ],
    },
    "HostConfig": {"NetworkMode": "host"},
}


def test_the_stamp_is_read_back_from_a_containers_inspect_data():
    bk = buildkit_from_inspect("ch16-node1", "node1", {"buildx_buildkit_ch16-node1": STAMPED})
    assert bk.status == "running" and bk.container_id == "c0ffee" and bk.image_id == "sha256:1234"
    assert bk.stamp == stamp.Stamp(
        settings="abc123",
        node="ch16/node1",
        version="0.1.0",
        applied="2026-12-07T01:20:00Z",
        superseded=(("old1", "2026-12-01T00:00:00Z"), ("old0", "2026-11-01T00:00:00Z")),
    )
    assert bk.stamp.newer_than("old0") == "2026-11-01T00:00:00Z" and bk.stamp.newer_than("other") is None
    assert bk.drained is None


def test_a_container_the_farm_did_not_create_has_no_stamp():
    plain = {**STAMPED, "Config": {**STAMPED["Config"], "Env": ["PATH=/usr/bin:/bin"]}}
    bk = buildkit_from_inspect("ch16-node1", "node1", {"buildx_buildkit_ch16-node1": plain})
    assert bk.stamp is None and bk.settings is None


def test_a_drain_marker_rides_along_in_the_same_inspect():
    marker = {
        "Name": "/buildkit-farm-drain_ch16-node1",
        "Config": {"Labels": {"org.buildkit-farm.drain.by": "ci@r1", "org.buildkit-farm.drain.at": "T"}},
    }
    found = {"buildx_buildkit_ch16-node1": STAMPED, "buildkit-farm-drain_ch16-node1": marker}
    assert buildkit_from_inspect("ch16-node1", "node1", found).drained == "by ci@r1 at T"


def test_the_stamp_goes_to_buildx_as_env_driver_opts_and_round_trips():
    s = stamp.Stamp("fp2", "ch16/node1", "0.1.0", stamp.NOW, (("fp1", "t1"),))
    opts = s.driver_opts(now="2026-12-07T02:00:00Z")
    assert ("env.BUILDKIT_FARM_SETTINGS", "fp2") in opts and ("env.BUILDKIT_FARM_SUPERSEDED", "fp1@t1") in opts
    assert all("," not in v for _, v in opts)  # buildx splits --driver-opt on commas
    back = stamp.from_driver_opts([*opts, ("network", "host")])
    assert back == replace(s, applied="2026-12-07T02:00:00Z")
    assert stamp.without_stamp([*opts, ("network", "host")]) == (("network", "host"),)


def test_a_successor_keeps_a_short_history_without_the_new_settings():
    s = stamp.Stamp("b", "n", "v", "tb", (("a", "ta"),))
    nxt = s.successor("a", "n", "v")  # back to a (reclaimed): a is no longer "older"
    assert nxt.settings == "a" and nxt.superseded == (("b", "tb"),) and nxt.applied == stamp.NOW
    many = stamp.Stamp("x", "n", "v", "t", tuple((f"f{i}", "t") for i in range(10)))
    assert len(many.successor("y", "n", "v").superseded) == stamp.KEEP


def test_what_buildx_adds_to_the_flags_is_no_difference():
    debug = replace(N1, buildkitd_flags="--debug")
    for cmd in (
        ("--debug", "--allow-insecure-entitlement=network.host"),
        ("--debug", "--allow-insecure-entitlement", "network.host"),
        ("--debug",),
    ):
        assert without_buildx_additions(cmd, debug) == ("--debug",)
        assert runs_differently(debug, running(debug, "x", cmd=cmd)) == ""
    assert "buildkitd args (none)" in runs_differently(
        debug, running(debug, "x", cmd=("--allow-insecure-entitlement=network.host",))
    )


def fresh_runner(*nodes):
    """What a runner that never ran `farm up` sees: no builder, no record; the containers stamped."""
    s = converged_state(*nodes)
    return replace(s, builder=None, record=None, contexts=MappingProxyType({}))


def test_a_fresh_runners_plan_keeps_the_running_containers():
    plan = make_plan(cfg(N1, N2), fresh_runner(N1, N2))
    buildkits = [st for st in plan.steps if st.kind == "buildkit"]
    assert [st.action for st in buildkits] == [Action.NOOP, Action.NOOP]
    assert not any("unknown" in st.reason for st in plan.steps)
    # Its buildx nodes copy the stamp the containers carry, so a later bootstrap writes the same.
    nodes = {st.name: st for st in plan.steps if st.kind == "node"}
    assert nodes["node1"].stamp == stamp_of(N1)
    assert "Nothing to do on the nodes" in plan_summary(plan)
    assert "Nothing to do on the nodes" not in plan_summary(make_plan(cfg(N1, N2), state()))  # from nothing


TLS_NODE = node(
    "arm",
    "tcp://127.0.0.1:2376",
    ["linux/arm64"],
    tls=TLSFiles(ca=Path("/t/ca.pem"), cert=Path("/t/client.pem"), key=Path("/t/client.key")),
)
THROUGH_TLS = ["--host", "tcp://127.0.0.1:2376", "--tlsverify"]
THROUGH_TLS += ["--tlscacert", "/t/ca.pem", "--tlscert", "/t/client.pem", "--tlskey", "/t/client.key"]


def stamped_inspect(s: NodeSettings) -> str:
    """`docker container inspect` of the BuildKit container another runner made for `s`."""
    env = [f"{k}={v}" for k, v in stamp_of(s).to_env()]
    config = {**STAMPED["Config"], "Cmd": list(expected_cmd(s)), "Env": env}
    return json.dumps({**STAMPED, "Id": f"id-{s.name}", "Name": f"/buildx_buildkit_ch16-{s.name}", "Config": config})


def test_a_fresh_runner_reads_a_tls_node_through_its_endpoint_with_the_files_tls(tmp_path, fake_docker):
    """No context yet for the tcp+TLS node: its container, BuildKit version and running builds
    are read with `--host URL --tlsverify --tlscacert … --tlscert … --tlskey …`, so the
    container another runner made is kept, not planned as missing."""
    desired = cfg(N1, TLS_NODE)
    for s in (N1, TLS_NODE):
        name = f"buildx_buildkit_ch16-{s.name}"
        fake_docker.on("inspect", name, stdout=stamped_inspect(s) + "\n")
        workers = json.dumps({"platforms": [{"os": "linux", "architecture": s.platforms[0].split("/")[1]}]})
        fake_docker.on("exec", name, "sh", stdout=f"buildkitd github.com/moby/buildkit v0.13.2 abc\n{workers}\n")
    observed = observe(desired, docker_config=tmp_path / "fresh")  # a runner that never ran `farm up`

    config, tls_prefix = ["--config", str(tmp_path / "fresh")], slice(1, 3 + len(THROUGH_TLS))
    inspects = {a[-2]: a for a in fake_docker.argvs if "inspect" in a}  # by container (its drain marker last)
    probes = {a[a.index("exec") + 1]: a for a in fake_docker.argvs if "exec" in a}  # the BuildKit version probe
    for read in (inspects, probes):
        assert read["buildx_buildkit_ch16-arm"][tls_prefix] == config + THROUGH_TLS
        assert read["buildx_buildkit_ch16-node1"][1:5] == [*config, "--host", N1.endpoint]  # unix://: no TLS
    assert len(fake_docker.argvs) == 4 and sum("--tlsverify" in a for a in fake_docker.argvs) == 2
    arm = observed.buildkits["ch16-arm"]
    assert (arm.status, arm.container_id, arm.version, arm.settings) == (
        "running",
        "id-arm",
        "v0.13.2",
        TLS_NODE.fingerprint,
    )
    plan = make_plan(desired, observed)
    assert [(st.name, st.action) for st in plan.steps if st.kind == "buildkit"] == [
        ("node1", Action.NOOP),
        ("arm", Action.NOOP),
    ]
    assert "Nothing to do on the nodes" in plan_summary(plan)

    # A runner waiting for builds (before a restart) asks the TLS node the same way.
    ref = holds.node_ref("ch16", arm, TLS_NODE)
    assert ref.where == TLS_NODE.endpoint
    holds.running_builds(observed.paths, ref)
    assert fake_docker.argvs[-1][tls_prefix] == config + THROUGH_TLS and "histories" in fake_docker.argvs[-1]


def test_the_paths_observe_uses_carry_every_tls_engine_of_the_file_and_no_other():
    from buildkit_farm.reconcile.observe import host_tls

    remote = node("bk", "tcp://10.0.0.9:1234", driver="remote", owns_context=False, tls=TLS_NODE.tls)
    user_ctx = node("mine", None, context="mine", owns_context=False)
    tls = host_tls(cfg(N1, N2, TLS_NODE, remote, user_ctx))
    assert list(tls) == ["tcp://127.0.0.1:2376"]  # not a remote buildkitd, nor unix:// or ssh://
    assert tls["tcp://127.0.0.1:2376"].given == ("/t/ca.pem", "/t/client.pem", "/t/client.key")
    paths = DockerPaths.resolve("/dc").with_host_tls(tls)
    assert paths.tls_of("tcp://127.0.0.1:2376") is not None and paths.tls_of("arm") is None


def test_a_container_without_a_stamp_or_record_is_unknown_and_the_plan_says_so():
    observed = converged_state(N1, record=False)
    observed = replace(
        observed,
        record=None,
        buildkits=MappingProxyType(
            {"ch16-node1": replace(observed.buildkits["ch16-node1"], stamp=None, settings=None)}
        ),
        builder=None,
    )
    plan = make_plan(cfg(N1), observed)
    (bk,) = [st for st in plan.changes if st.kind == "buildkit"]
    assert "the farm did not create" in bk.reason and bk.mode == "restart"
    assert bk.changes == (("settings", "(unknown: not created by the farm)", N1.fingerprint),)


def test_a_changed_setting_is_named_with_both_values():
    debug = replace(N1, buildkitd_flags="--debug")
    plan = make_plan(cfg(debug), converged_state(N1))
    (bk,) = [st for st in plan.changes if st.kind == "buildkit"]
    assert ("buildkitd_flags", "(none)", "--debug") in bk.changes and bk.mode == "restart"
    (nd,) = [st for st in plan.changes if st.kind == "node"]
    assert nd.stamp is not None and nd.stamp.settings == debug.fingerprint
    assert nd.stamp.superseded[0][0] == N1.fingerprint  # the node remembers what it ran before


def newer_node_state():
    """node1 runs --debug, applied after this file's settings (which it ran before)."""
    debug = replace(N1, buildkitd_flags="--debug")
    newer = stamp_of(debug, applied="2026-12-07T02:00:00Z", superseded=((N1.fingerprint, "2026-12-01T00:00:00Z"),))
    bk = running(debug, "id-new", stamp=newer, settings=debug.fingerprint)
    return replace(converged_state(N1), buildkits=MappingProxyType({"ch16-node1": bk}))


def test_a_node_newer_than_the_file_is_not_changed_back():
    plan = make_plan(cfg(N1), newer_node_state())
    assert plan.converged, lines(plan)
    (bk,) = [st for st in plan.steps if st.kind == "buildkit"]
    assert "node1 runs settings from a newer farm file" in bk.reason and "not changed back" in bk.reason
    assert "buildkitd_flags" in bk.reason and "--debug" in bk.reason


def test_reclaim_changes_a_newer_node_back():
    plan = make_plan(cfg(N1), newer_node_state(), reclaim=True)
    (bk,) = [st for st in plan.changes if st.kind == "buildkit"]
    assert bk.mode == "restart"
    (nd,) = [st for st in plan.changes if st.kind == "node"]
    assert nd.stamp is not None and nd.stamp.superseded[0][0] == replace(N1, buildkitd_flags="--debug").fingerprint


def test_settings_the_node_never_ran_are_applied():
    other = replace(N1, buildkitd_flags="--oci-worker-gc=false")
    plan = make_plan(cfg(other), newer_node_state())
    assert [st.mode for st in plan.changes if st.kind == "buildkit"] == ["restart"]


def test_running_builds_are_the_records_without_a_completion_time():
    text = "\n".join(
        [
            '{"record":{"Ref":"abc","FrontendAttrs":{"target":"app"},"CreatedAt":"2026-12-07T01:17:38.58Z"}}',
            '{"type":1,"record":{"Ref":"done1","CreatedAt":"2026-12-07T01:10:00Z","CompletedAt":"2026-12-07T01:11:00Z"}}',
            "not json",
        ]
    )
    assert parse_running_builds(text) == ("build abc (target app), started 2026-12-07 01:17:38 UTC",)
    assert parse_running_builds("") == ()


def pooled_state(drained: str | None):
    a = replace(N2, name="arm2", context="arm2", platforms=("linux/arm64",))
    b = replace(N2, name="arm3", context="arm3", platforms=("linux/arm64",))
    s = converged_state(N1, a, b)
    # converged: buildx pins arm64 on the pool's active node only; arm3 stands by
    standby = replace(s.builder.node("ch16-arm3"), platforms=())
    s = replace(s, builder=replace(s.builder, nodes=(*s.builder.nodes[:2], standby)))
    if drained:
        bks = dict(s.buildkits)
        bks[f"ch16-{drained}"] = replace(bks[f"ch16-{drained}"], drained="by ci at T")
        s = replace(s, buildkits=MappingProxyType(bks))
    return cfg(N1, a, b), s


def test_a_drained_node_hands_its_platforms_to_its_pool_partner():
    assert make_plan(*pooled_state(None), needed={"linux/arm64"}).converged  # undrained: nothing moves
    desired, observed = pooled_state("arm2")
    view = pool_view(desired, observed, needed={"linux/arm64"})
    assert view.pool("linux/arm64").active == "arm3" and "arm2" in view.drained
    plan = make_plan(desired, observed, needed={"linux/arm64"})
    moves = {st.name: st for st in plan.changes}
    assert moves["arm3"].mode == "pin"  # the pin moves to the partner; nothing restarts
    assert moves["arm3"].stamp == stamp_of(replace(N2, name="arm3"))  # buildx replaces driver opts on --append
    assert not [st for st in plan.changes if st.kind == "buildkit"]


def test_a_drained_node_with_no_partner_is_no_error_for_up_nor_for_the_pools():
    # Whether a build needing its platform is refused or emulates it is the targets' say
    # (allow_emulation): builds/schedule.py, tests/unit/test_drain.py.
    desired, observed = pooled_state(None)
    bks = dict(observed.buildkits)
    bks["ch16-node1"] = replace(bks["ch16-node1"], drained="by ci at T")
    observed = replace(observed, buildkits=MappingProxyType(bks))
    view = pool_view(desired, observed, needed={"linux/amd64"})
    assert view.pool("linux/amd64").active is None and "node1" in view.spare
    pool_view(desired, observed)  # `farm up` (every platform, no build) still plans


def test_state_without_stamps_still_plans_from_the_record():
    """Containers made by a farm before stamps: the record (same container id) stands in."""
    s = converged_state(N1)
    bk = replace(s.buildkits["ch16-node1"], stamp=None)
    s = replace(s, buildkits=MappingProxyType({"ch16-node1": bk}))
    assert [st.action for st in make_plan(cfg(N1), s).steps if st.kind == "buildkit"] == [Action.NOOP]
    assert state  # the helper module is the one the plan cases use


def test_a_restart_locks_and_waits_on_that_node_only_through_its_endpoint():
    from buildkit_farm.reconcile.holds import guarded

    debug = replace(N1, buildkitd_flags="--debug")
    desired, observed = cfg(debug, N2), converged_state(N1, N2)
    lock, wait = guarded(desired, observed, make_plan(desired, observed))
    assert [(r.name, r.where) for r in lock] == [("node1", N1.endpoint)] and wait == lock
    assert guarded(cfg(N1, N2), observed, make_plan(cfg(N1, N2), observed)) == ([], [])  # converged: no lock


def test_a_builder_made_before_stamps_only_restamps_and_a_build_does_that_by_itself():
    from buildkit_farm.reconcile.converge import pool_moves

    s = converged_state(N1)
    old = replace(s.builder.node("ch16-node1"), stamp=None)
    s = replace(s, builder=replace(s.builder, nodes=(old,)))
    plan = make_plan(cfg(N1), s)
    (step,) = plan.changes
    assert (step.kind, step.mode, step.stamp) == ("node", "stamp", stamp_of(N1))
    assert pool_moves(plan) == (step,)  # no container touched: `farm build` applies it


def test_down_waits_on_every_running_node():
    from buildkit_farm.reconcile.holds import guarded
    from buildkit_farm.reconcile.plan import make_down_plan

    observed = converged_state(N1, N2)
    lock, wait = guarded(cfg(N1, N2), observed, make_down_plan(cfg(N1, N2), observed))
    assert sorted(r.name for r in wait) == ["node1", "node2"] and wait == lock
