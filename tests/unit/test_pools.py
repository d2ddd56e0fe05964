"""Node pools without Docker: who builds each platform, and the plan that makes buildx agree."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_plan import HOST1, HOST2, cfg, converged_state, lines, node, running, stored

from buildkit_farm.builds.schedule import NodeView, schedule
from buildkit_farm.errors import EngineUnreachable, NoHealthyNode
from buildkit_farm.farmfile.load import load_config_text
from buildkit_farm.reconcile import pools
from buildkit_farm.reconcile.converge import pool_moves
from buildkit_farm.reconcile.plan import make_plan
from buildkit_farm.reconcile.render import pools_text, status_json
from buildkit_farm.reconcile.steps import Action

HOST3 = "unix:///var/lib/buildkit-farm-lab/node3/docker.sock"
A = node("a", HOST1, ["linux/amd64"])
B = node("b", HOST2, ["linux/arm64", "linux/arm/v7"])
C = node("c", HOST3, ["linux/arm64", "linux/arm/v7"])
C_STANDBY = replace(C, platforms=())  # as buildx holds a standby: no pin


def left(st, buildx_node: str):
    """The state with that node out of the buildx builder (its context and container stay)."""
    return replace(st, builder=replace(st.builder, nodes=tuple(n for n in st.builder.nodes if n.name != buildx_node)))


def down(s, **over):
    return running(
        s, "", status="unreachable", error="ssh: connect to host 127.0.0.1 port 2222: Connection refused", **over
    )


# ------------------------------------------------------------------ resolve (pure)
def test_the_first_healthy_member_is_active_the_rest_stand_by():
    view = pools.resolve((A, B, C), {"a": "running", "b": "running", "c": "running"})
    arm = view.pool("linux/arm64")
    assert (arm.members, arm.active, arm.standby, arm.down) == (("b", "c"), "b", ("c",), ())
    assert view.active_pins == {"a": ("linux/amd64",), "b": ("linux/arm64", "linux/arm/v7"), "c": ()}
    assert view.spare == frozenset() and view.members == {"b", "c"}


def test_a_down_member_hands_its_platforms_to_the_next_and_is_spare():
    view = pools.resolve((A, B, C), {"b": "unreachable"})  # a and c not observed yet: healthy
    assert view.pool("linux/arm/v7").active == "c" and view.pool("linux/arm/v7").down == ("b",)
    assert view.active_pins["c"] == ("linux/arm64", "linux/arm/v7") and view.active_pins["b"] == ()
    assert view.spare == {"b"}


def test_stopped_or_missing_buildkit_is_healthy_an_excluded_node_is_not():
    view = pools.resolve((A, B, C), {"b": "stopped", "c": "missing"})
    assert view.pool("linux/arm64").active == "b"
    view = pools.resolve((A, B, C), {}, exclude={"b"})
    assert view.pool("linux/arm64").active == "c" and view.spare == {"b"}


def test_every_member_down_strands_the_platform_and_no_node_is_spare():
    view = pools.resolve((A, B, C), {"b": "unreachable", "c": "unreachable"})
    assert [p.platform for p in view.stranded()] == ["linux/arm64", "linux/arm/v7"]
    assert view.spare == frozenset()
    # ...but a build of amd64 alone needs neither: both are spare, nothing is stranded for it
    view = pools.resolve((A, B, C), {"b": "unreachable", "c": "unreachable"}, needed={"linux/amd64"})
    assert view.stranded({"linux/amd64"}) == () and view.spare == {"b", "c"}


def test_a_node_building_what_it_detects_is_never_spare():
    free = node("free", HOST3)
    view = pools.resolve((A, free), {"free": "unreachable"})
    assert view.spare == frozenset()


def test_pinned_now_without_pools_is_the_file_unchanged():
    view = pools.resolve((A, B), {"a": "running", "b": "running"})
    assert pools.pinned_now((A, B), view) == (A, B)


def test_pins_taken_names_who_takes_each_pin():
    wanted = (A, replace(B, platforms=()), C)
    assert pools.pins_taken("b", ("linux/arm64", "linux/arm/v7"), wanted) == {"linux/arm64": "c", "linux/arm/v7": "c"}
    assert pools.pins_taken("b", ("linux/s390x",), wanted) == {}


# ------------------------------------------------------------------ the plan with pools
def test_converged_pool_plans_nothing_and_the_standby_holds_no_pin():
    st = converged_state(A, B, C_STANDBY)
    plan = make_plan(cfg(A, B, C), st)
    assert plan.converged, lines(plan)


def test_from_nothing_the_standby_joins_without_pins():
    plan = make_plan(cfg(A, B, C), converged_state(A, B, C_STANDBY, builder=False, record=False))
    joins = {s.name: dict((f, n) for f, _, n in s.changes) for s in plan.steps if s.kind == "node"}
    assert joins["b"]["platforms"] == "linux/arm64, linux/arm/v7" and "platforms" not in joins["c"]


def test_preferred_node_down_its_pins_move_and_it_leaves_the_builder():
    st = converged_state(A, B, C_STANDBY)
    st = replace(st, buildkits={**st.buildkits, "ch16-b": down(B, node="ch16-b")})
    plan = make_plan(cfg(A, B, C), st)
    by = {(s.kind, s.name): s for s in plan.steps}
    assert by[("node", "c")].action is Action.UPDATE and by[("node", "c")].mode == "pin"
    assert by[("node", "c")].settings.platforms == ("linux/arm64", "linux/arm/v7")
    # buildx loads every node on --append and rolls back when one is down: b leaves first
    assert by[("node", "b")].action is Action.REMOVE and by[("node", "b")].mode == "leave"
    assert by[("buildkit", "b")].action is Action.NOOP and "unreachable" in by[("buildkit", "b")].reason
    assert [s.name for s in plan.changes] == ["b", "c"]  # leave before append
    assert pool_moves(plan) == plan.changes  # a build applies these by itself


def test_after_the_move_a_second_plan_is_empty():
    moved = replace(C, platforms=("linux/arm64", "linux/arm/v7"))
    st = left(converged_state(A, B, moved), "ch16-b")
    st = replace(st, buildkits={**st.buildkits, "ch16-b": down(B, node="ch16-b")})
    plan = make_plan(cfg(A, B, C), st)
    assert plan.converged, lines(plan)
    assert "joins when it answers" in next(s.reason for s in plan.steps if s.kind == "node" and s.name == "b")


def test_failback_the_returning_node_rejoins_and_takes_its_pins_back():
    moved = replace(C, platforms=("linux/arm64", "linux/arm/v7"))
    st = left(converged_state(A, B, moved), "ch16-b")
    plan = make_plan(cfg(A, B, C), st)
    by = {(s.kind, s.name): s for s in plan.steps}
    assert by[("node", "b")].action is Action.CREATE and by[("node", "b")].mode == "join"
    assert by[("node", "c")].action is Action.NOOP and "move" in by[("node", "c")].reason
    assert pool_moves(plan) == plan.changes


def test_every_member_down_fails_naming_the_platform_and_its_nodes():
    st = converged_state(A, B, C_STANDBY)
    st = replace(st, buildkits={**st.buildkits, "ch16-b": down(B, node="ch16-b"), "ch16-c": down(C, node="ch16-c")})
    with pytest.raises(NoHealthyNode) as caught:
        make_plan(cfg(A, B, C), st)
    assert caught.value.exit_code == 1
    assert 'linux/arm64: "b" (unreachable: ssh' in caught.value.message and '"c"' in caught.value.message
    # a build of amd64 alone does not need them
    assert make_plan(cfg(A, B, C), st, needed={"linux/amd64"}).converged


def test_a_lone_node_down_is_still_an_error_for_up_but_not_for_a_build_without_its_platforms():
    st = converged_state(A, B)
    st = replace(st, buildkits={**st.buildkits, "ch16-b": down(B, node="ch16-b")})
    with pytest.raises(EngineUnreachable):
        make_plan(cfg(A, B), st)
    assert make_plan(cfg(A, B), st, needed={"linux/amd64"}).converged


def test_a_pin_changed_in_the_file_is_not_a_pool_move():
    st = converged_state(A, B, C_STANDBY)
    plan = make_plan(cfg(A, replace(B, platforms=("linux/arm64",)), C), st)
    assert pool_moves(plan) == ()


# ------------------------------------------------------------------ what the build schedules
def test_the_schedule_follows_the_active_pins():
    views = (
        NodeView("a", "a", True, ("linux/amd64",)),
        NodeView("b", "b", False, (), status="unreachable"),
        NodeView("c", "c", True, ("linux/arm64",)),
    )
    got = schedule(["linux/amd64", "linux/arm64"], views, target="t")
    assert [(x.platform, x.node, x.emulated) for x in got] == [("linux/amd64", "a", False), ("linux/arm64", "c", False)]


# ------------------------------------------------------------------ validate and render
POOL_FILE = """
[builder]
name = "farm"
[[node]]
name = "node1"
endpoint = "unix:///var/run/docker.sock"
platforms = ["linux/amd64"]
[[node]]
name = "node2"
endpoint = "ssh://farm@127.0.0.1:2222"
platforms = ["aarch64"]
[[node]]
name = "node3"
endpoint = "unix:///n3.sock"
platforms = ["linux/arm64", "linux/amd64"]
"""


def test_validate_shows_each_platforms_pool_in_file_order():
    config = load_config_text(POOL_FILE)
    assert config.pools() == {"linux/amd64": ("node1", "node3"), "linux/arm64": ("node2", "node3")}
    assert config.pinned_platforms() == {"linux/amd64": "node1", "linux/arm64": "node2"}
    assert config.summary()["pools"] == {"linux/amd64": ["node1", "node3"], "linux/arm64": ["node2", "node3"]}
    text = config.describe()
    assert "pool linux/amd64  node1 > node3" in text and "pool linux/arm64  node2 > node3" in text


def test_status_shows_active_standby_and_down():
    view = pools.resolve((A, B, C), {"b": "unreachable"})
    text = "\n".join(pools_text(view.pools))
    assert "linux/arm64   c       -        b" in text
    data = __import__("json").loads(status_json("ch16", (), pools=view.pools, warnings=("w",)))
    assert data["pools"][1] == {
        "platform": "linux/arm64",
        "members": ["b", "c"],
        "active": "c",
        "standby": [],
        "down": ["b"],
    }
    assert data["warnings"] == ["w"]


def test_stored_helper_matches_a_standby():
    # the standby's buildx node has no pins: what `farm up` made it join with
    assert stored(C_STANDBY).platforms == ()


# ------------------------------------------------------------------ up's verdict
def test_up_verifies_the_farm_with_a_pool_node_down_as_a_warning():
    from buildkit_farm.reconcile.converge import _verified

    moved = replace(C, platforms=("linux/arm64", "linux/arm/v7"))
    st = left(converged_state(A, B, moved), "ch16-b")
    st = replace(st, buildkits={**st.buildkits, "ch16-b": down(B, node="ch16-b")})
    status = _verified(cfg(A, B, C), st)
    (warning,) = status.warnings
    assert warning.startswith('node "b" is unreachable (ssh: connect') and "linux/arm64 on c" in warning
    assert {p.platform: p.active for p in status.pools} == {
        "linux/amd64": "a",
        "linux/arm64": "c",
        "linux/arm/v7": "c",
    }


def test_up_still_fails_for_a_lone_node_down():
    from buildkit_farm.errors import NotConverged
    from buildkit_farm.reconcile.converge import _verified

    st = converged_state(A, B)
    st = replace(st, buildkits={**st.buildkits, "ch16-b": down(B, node="ch16-b")})
    with pytest.raises(NotConverged, match='node "b" is unreachable'):
        _verified(cfg(A, B), st)
