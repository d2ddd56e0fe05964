"""A drained node without Docker: it leaves the runner's builder, a platform only it builds is
emulated elsewhere where the target allows it (else refused), and it takes no build at all."""

from __future__ import annotations

import json
from dataclasses import replace
from types import MappingProxyType
from types import SimpleNamespace as NS

import pytest
from observed import converged_state
from test_plan import N1, N2, cfg
from test_runners import pooled_state

from buildkit_farm.builds import job
from buildkit_farm.builds.report import PlatformReport, TargetReport, render_text
from buildkit_farm.builds.schedule import Assignment, NodeView, node_views, schedule
from buildkit_farm.docker import DockerRead
from buildkit_farm.errors import NodeDrained
from buildkit_farm.reconcile.converge import pool_moves
from buildkit_farm.reconcile.plan import make_plan
from buildkit_farm.reconcile.pools import pool_view
from buildkit_farm.reconcile.prefetch import drains_seen
from buildkit_farm.reconcile.steps import Action, StepMode

DRAINED = "by ci@r1 at 2026-12-07T01:00:00Z: kernel update"
ARM64 = replace(N2, platforms=("linux/arm64",))


def drained(st, *names: str):
    bks = dict(st.buildkits)
    for name in names:
        bks[f"ch16-{name}"] = replace(bks[f"ch16-{name}"], drained=DRAINED)
    return replace(st, buildkits=MappingProxyType(bks))


def without(st, *names: str):
    """The state with these nodes out of the runner's builder (their containers stay)."""
    gone = {f"ch16-{n}" for n in names}
    return replace(st, builder=replace(st.builder, nodes=tuple(n for n in st.builder.nodes if n.name not in gone)))


def by_name(plan):
    return {(str(st.kind), st.name): st for st in plan.steps}


# ------------------------------------------------------------------ the plan: the drained node leaves
def test_a_drained_sole_node_leaves_the_builder_and_its_buildkit_is_left_as_it_is():
    desired, observed = cfg(N1, ARM64), drained(converged_state(N1, ARM64), "node2")
    plan = make_plan(desired, observed, needed={"linux/amd64", "linux/arm64"})
    steps = by_name(plan)
    leave = steps[("node", "node2")]
    assert (leave.action, leave.mode, leave.buildx_node) == (Action.REMOVE, StepMode.DRAINED, "ch16-node2")
    assert "drained by ci@r1" in leave.reason and "leaves this runner's builder" in leave.reason
    assert "no other node builds linux/arm64" in leave.reason and "allow_emulation" in leave.reason
    assert steps[("buildkit", "node2")].action is Action.NOOP  # nothing restarts, nothing is removed
    assert [st.name for st in plan.changes] == ["node2"]  # node1 keeps its pin: nothing else moves
    assert pool_moves(plan) == plan.changes  # a build applies it by itself, as a pool move


def test_farm_up_on_a_drained_sole_node_plans_the_leave_not_a_rejoin_on_detected_platforms():
    # It used to lose its pin by a rejoin, and stay in the builder matching every platform it detects.
    desired, observed = pooled_state(None)
    observed = drained(observed, "node1")
    plan = make_plan(desired, observed)
    assert [(st.kind, st.name, st.mode) for st in plan.changes] == [("node", "node1", StepMode.DRAINED)]


def test_out_of_the_builder_a_drained_node_is_converged_and_rejoins_when_undrained():
    desired = cfg(N1, ARM64)
    out = without(drained(converged_state(N1, ARM64), "node2"), "node2")
    plan = make_plan(desired, out, needed={"linux/amd64", "linux/arm64"})
    assert plan.converged, plan.changes
    assert "not in this runner's builder" in by_name(plan)[("node", "node2")].reason
    undrained = without(converged_state(N1, ARM64), "node2")
    back = make_plan(desired, undrained, needed={"linux/arm64"})
    (join,) = back.changes
    assert (join.name, join.action, join.mode) == ("node2", Action.CREATE, StepMode.JOIN)
    assert dict((f, n) for f, _, n in join.changes)["platforms"] == "linux/arm64"  # its pin comes back
    assert pool_moves(back) == back.changes


def test_a_pool_partner_takes_the_pin_and_the_drained_node_leaves_after_the_appends():
    desired, observed = pooled_state("arm2")
    plan = make_plan(desired, observed, needed={"linux/arm64"})
    assert [(st.name, st.mode) for st in plan.changes] == [("arm3", StepMode.PIN), ("arm2", StepMode.DRAINED)]


def test_the_last_node_of_the_builder_stays_drained_in_it():
    desired = cfg(N1, ARM64)
    observed = drained(converged_state(N1, ARM64), "node1", "node2")
    plan = make_plan(desired, observed)
    assert plan.converged
    assert all("buildx cannot leave its last node" in by_name(plan)[("node", n)].reason for n in ("node1", "node2"))


def test_a_drained_node_leaves_after_an_undrained_one_joins_back():
    # node1 left while drained; now node1 is undrained and node2 drained: the builder is never empty.
    desired = cfg(N1, ARM64)
    observed = without(drained(converged_state(N1, ARM64), "node2"), "node1")
    plan = make_plan(desired, observed)
    assert [(st.name, st.action, st.mode) for st in plan.changes] == [
        ("node1", Action.CREATE, StepMode.JOIN),
        ("node2", Action.REMOVE, StepMode.DRAINED),
    ]


def test_undrained_nodes_join_a_builder_left_with_one_pool_node_and_it_is_not_recreated():
    # amd and arm2 left while drained; arm3 alone holds the arm64 pin. Undrained, both join
    # again and arm2's --append takes the pin back: buildx can keep arm3 as it is.
    desired, observed = pooled_state(None)
    arm3 = replace(observed.builder.node("ch16-arm3"), platforms=("linux/arm64",))
    observed = replace(observed, builder=replace(observed.builder, nodes=(arm3,)))
    plan = make_plan(desired, observed, needed={"linux/amd64", "linux/arm64"})
    assert [(st.name, st.action, st.mode) for st in plan.changes] == [
        ("node1", Action.CREATE, StepMode.JOIN),
        ("arm2", Action.CREATE, StepMode.JOIN),
    ]
    assert "pins move (linux/arm64 to arm2)" in by_name(plan)[("node", "arm3")].reason


def test_the_pool_view_leaves_the_refusal_to_the_targets():
    desired, observed = cfg(N1, ARM64), drained(converged_state(N1, ARM64), "node2")
    view = pool_view(desired, observed, needed={"linux/arm64"})
    assert view.drained == {"node2"} and "node2" in view.spare and view.pool("linux/arm64").active is None


# ------------------------------------------------------------------ the schedule: emulated, or refused
AMD = NodeView("node1", "node1", True, ("linux/amd64",), ("linux/amd64", "linux/arm64"), file_pins=("linux/amd64",))
ARM = NodeView("node2", "node2", True, (), ("linux/arm64", "linux/arm/v7"), drained=DRAINED, file_pins=("linux/arm64",))


def test_a_platform_whose_only_node_is_drained_is_emulated_where_the_target_allows_it():
    got = schedule(["linux/amd64", "linux/arm64"], (AMD, ARM), target="app", allow_emulation=["linux/arm64"])
    assert got[0] == Assignment("linux/amd64", "node1", False)
    assert (got[1].node, got[1].emulated) == ("node1", True)
    assert got[1].why == f'node "node2" is drained ({DRAINED})'


def test_without_allow_emulation_it_is_refused_with_exit_1_naming_target_node_and_way_out():
    with pytest.raises(NodeDrained) as caught:
        schedule(["linux/amd64", "linux/arm64"], (AMD, ARM), target="app")
    err = caught.value
    assert err.exit_code == 1
    assert err.message == (
        f'target "app": linux/arm64: node "node2" is drained ({DRAINED}) and no other node is pinned to it'
    )
    assert "farm undrain" in err.hint and 'allow_emulation = ["linux/arm64"]' in err.hint


def test_a_drained_node_never_emulates_even_first_in_the_builder_and_detecting_the_platform():
    v7 = NodeView("node3", "node3", True, (), ("linux/amd64", "linux/arm/v7"), file_pins=())
    got = schedule(["linux/arm/v7"], (ARM, AMD, v7), target="app", allow_emulation=["linux/arm/v7"])
    assert got == (Assignment("linux/arm/v7", "node3", True),)
    got = schedule(["linux/s390x"], (ARM, AMD), target="app", allow_emulation=["linux/s390x"])
    assert got[0].node == "node1"  # buildx's fallback, node 0 of the builder: never the drained node


def test_nowhere_to_emulate_is_refused_too():
    alone = replace(AMD, drained=DRAINED, pinned=())
    with pytest.raises(NodeDrained, match="no other node is up to emulate it"):
        schedule(["linux/arm64"], (alone, ARM), target="app", allow_emulation=["linux/arm64"])


def test_a_pool_drained_and_down_says_both():
    down = NodeView("arm3", "arm3", False, (), status="unreachable", file_pins=("linux/arm64",))
    with pytest.raises(NodeDrained) as caught:
        schedule(["linux/arm64"], (AMD, ARM, down), target="app")
    assert "the others are down (arm3)" in caught.value.message
    got = schedule(["linux/arm64"], (AMD, ARM, down), target="app", allow_emulation=["linux/arm64"])
    assert got[0].node == "node1" and "the others are down (arm3)" in got[0].why


def test_node_views_follow_the_builder_and_mark_the_drained_node_out_of_it():
    nodes = (
        NS(name="node1", context="node1", platforms=("linux/amd64",)),
        NS(name="node2", context="node2", platforms=("linux/arm64",)),
        NS(name="node3", context="node3", platforms=()),
    )

    def seen(name, drained=None):
        return NS(
            name=name, context=name, status="running", version="v0.29", detected=("linux/arm64",), drained=drained
        )

    pools = (NS(platform="linux/amd64", active="node1"), NS(platform="linux/arm64", active=None))
    status = NS(
        nodes=(seen("node1"), seen("node2", DRAINED), seen("node3")), pools=pools, in_builder=("node3", "node1")
    )
    views = node_views(nodes, status)
    assert [(v.name, v.in_builder) for v in views] == [("node3", True), ("node1", True), ("node2", False)]
    arm = views[2]
    assert arm.pinned == () and arm.file_pins == ("linux/arm64",) and arm.drained == DRAINED
    # buildx would send an unpinned arm64 to node3, the builder's first node detecting it
    assert schedule(["linux/arm64"], views, target="t", allow_emulation=["linux/arm64"])[0].node == "node3"


# ------------------------------------------------------------------ what people read
def test_the_report_says_why_a_platform_was_emulated():
    r = TargetReport(target="app", tags=["r/app:1"])
    why = f'node "node2" is drained ({DRAINED})'
    r.platforms.append(PlatformReport("linux/arm64", "node1", True, "v0.29", 2.0, "sha256:b", why_emulated=why))
    assert "emulated buildkit v0.29" in render_text([r]) and f"({why})" in render_text([r])
    assert r.to_dict()["platforms"][0]["why_emulated"] == why


# ------------------------------------------------------------------ the early start waits for the drains
class Reads:
    """Stands in for `Prefetch`: the inspects as `docker container inspect` answered them."""

    def __init__(self, *reads):
        self.reads = list(reads)

    def finish_all(self):
        done, self.reads = self.reads, []
        return done


def inspect(*names: str, missing: tuple[str, ...] = ()):
    args = ["container", "inspect", "--format", "{{json .}}", *names, *missing]
    out = "\n".join(json.dumps({"Name": f"/{n}"}) for n in names)
    return args, DockerRead(1 if missing else 0, out, "".join(f"Error: No such object: {m}\n" for m in missing))


def test_drains_are_read_from_the_inspects_started_with_the_command():
    bk1, bk2 = "buildx_buildkit_ch16-node1", "buildx_buildkit_ch16-node2"
    mark1, mark2 = "buildkit-farm-drain_ch16-node1", "buildkit-farm-drain_ch16-node2"
    nodes = ["ch16-node1", "ch16-node2"]
    assert drains_seen(Reads(inspect(bk1, missing=(mark1,)), inspect(bk2, mark2)), nodes) == {"ch16-node2"}
    assert drains_seen(Reads(inspect(bk1, missing=(mark1,)), inspect(bk2, missing=(mark2,))), nodes) == frozenset()
    unanswered = (["container", "inspect", bk2, mark2], DockerRead(1, "", "ssh: connect to host: refused"))
    assert drains_seen(Reads(inspect(bk1, missing=(mark1,)), unanswered), nodes) is None  # not known
    assert drains_seen(Reads(inspect(bk1, missing=(mark1,))), nodes) is None  # node2 was not asked


def test_no_early_start_unless_the_builder_is_as_filed_and_no_node_is_known_to_be_drained(tmp_path):
    desired = cfg(N1, ARM64)
    bk1, bk2 = "buildx_buildkit_ch16-node1", "buildx_buildkit_ch16-node2"
    marks = ("buildkit-farm-drain_ch16-node1", "buildkit-farm-drain_ch16-node2")
    instance = tmp_path / "buildx" / "instances" / "ch16"
    instance.parent.mkdir(parents=True)

    def builder(*nodes):
        def platform(p):
            os_, arch, *variant = p.split("/")
            return {"os": os_, "architecture": arch, **({"variant": variant[0]} if variant else {})}

        stored = [
            {"Name": f"ch16-{s.name}", "Endpoint": s.context, "Platforms": [platform(p) for p in s.platforms]}
            for s in nodes
        ]
        instance.write_text(json.dumps({"Name": "ch16", "Driver": "docker-container", "Nodes": stored}))

    def early(reads):
        return job._as_filed(desired, str(tmp_path), reads)

    builder(N1, ARM64)
    assert early(Reads(inspect(bk1, bk2, missing=marks)))
    assert not early(Reads(inspect(bk1, bk2, marks[1])))  # node2 is drained
    assert not early(None)  # not asked: not known
    builder(N1)  # node2 left this runner's builder (drained, or down): the check joins it again first
    assert not early(Reads(inspect(bk1, bk2, missing=marks)))
    builder(N1, replace(ARM64, platforms=()))  # a pin moved
    assert not early(Reads(inspect(bk1, bk2, missing=marks)))
