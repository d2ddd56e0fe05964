"""The plan: what `farm up` must change, computed purely from the desired and the observed state.

`make_plan(desired, state)` does no IO: it never talks to Docker and reads no file (the
desired state carries every file's content already). It returns ordered `Step`s; each has
an action from a small closed set and a reason, and an unchanged thing is a NOOP step with
the reason it needs nothing. One planner per kind of resource, mirroring apply's handlers;
each adds the problems that block the plan (a foreign context, an unreachable engine) to
one list, so `farm plan` reports all of them at once.

Kinds and actions (apply has one function per pair):
- context   + create, ~ update (endpoint or TLS), - remove (down only)
- builder   + create (claims it for the farm), -/+ replace (the driver changed), - remove
- node      + append, ~ update in place (`--append --node`), or rejoin (`--leave` then
            `--append`) when a setting must be cleared, - leave; for pools (pools.py):
            ~ pin (a pin moves to the pool's first healthy node), - leave (a down pool
            node, so the others can change, or a drained one), + join (it answers again)
- buildkit  + create its container, ~ start or restart it (state volume kept), - remove
            its container (state volume kept unless asked)
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Collection

from buildkit_farm.errors import EngineUnreachable, FarmError, ForeignResource, PlanBlocked
from buildkit_farm.farmfile.desired import Desired, NodeSettings
from buildkit_farm.reconcile import pools
from buildkit_farm.reconcile.drift import (
    buildx_flags,
    newer_reason,
    runs_differently,
    setting_diffs,
    wanted_stamp,
    without_buildx_additions,
)
from buildkit_farm.reconcile.names import buildx_node_name, file_node_name
from buildkit_farm.reconcile.observe import FarmState, ObservedBuildkit, ObservedNode
from buildkit_farm.reconcile.stamp import Stamp
from buildkit_farm.reconcile.steps import Action, Plan, Step, StepKind, StepMode


def _tls_wanted(s: NodeSettings, state: FarmState) -> tuple[tuple[str, str], ...]:
    if s.tls is None:
        return ()
    return tuple((kind, state.tls_digests.get(str(path), "(unreadable)")) for kind, path in s.tls.files())


def _unreachable(name: str, bk: ObservedBuildkit, endpoint: str | None) -> EngineUnreachable:
    return EngineUnreachable(node=name, endpoint=endpoint or bk.context, detail=bk.error or "no answer")


# ---------------------------------------------------------------------------- the plan
def make_plan(
    desired: Desired,
    state: FarmState,
    *,
    needed: Collection[str] | None = None,
    exclude: Collection[str] = (),
    reclaim: bool = False,
) -> Plan:
    """Steps that make the observed state match the file: contexts, builder, nodes, BuildKits.

    Raises the one problem that blocks it, or `PlanBlocked` listing every one (a platform
    whose whole pool is down: `NoHealthyNode` at once). `needed`: the platforms this run
    builds (None: all, as `farm up` needs); `exclude`: nodes to leave out (a node that
    died during a build). Both only matter to pools. `reclaim`: change back a node that
    runs settings from a newer farm file (by default it is left as it is).
    """
    # buildx holds each platform's pin on its pool's active node only (reconcile/pools.py).
    view = pools.pool_view(desired, state, needed=needed, exclude=exclude)
    desired = dataclasses.replace(desired, nodes=pools.pinned_now(desired.nodes, view))
    problems: list[FarmError] = []
    contexts, moved = plan_contexts(desired, state, problems)
    builder, rebuild = plan_builder(desired, state, problems, view)
    nodes = plan_nodes(desired, state, view, replace=rebuild, reclaim=reclaim)
    buildkits = plan_buildkits(desired, state, view, replace=rebuild, moved=moved, problems=problems, reclaim=reclaim)
    if problems:
        raise problems[0] if len(problems) == 1 else PlanBlocked(problems)
    steps = [*contexts, *builder, *nodes, *buildkits]
    pools.leave_if_blocking(steps, state, view)
    return Plan(builder=desired.builder.name, driver=desired.builder.driver, steps=_ordered(steps))


def plan_contexts(desired: Desired, state: FarmState, problems: list[FarmError]) -> tuple[list[Step], set[str]]:
    """Context steps, and the contexts whose engine changes (their BuildKit moves with them)."""
    steps: list[Step] = []
    moved: set[str] = set()
    for s in desired.nodes:
        if s.driver != "docker-container":
            continue  # remote and kubernetes nodes use no Docker context
        ctx = state.contexts.get(s.context)
        if not s.owns_context:
            if ctx is None:
                problems.append(
                    FarmError(
                        f'node "{s.name}": context "{s.context}" does not exist',
                        hint="create it (`docker context create`), or give the node an `endpoint` "
                        "so the farm creates one",
                    )
                )
                continue
            steps.append(
                Step(
                    StepKind.CONTEXT, s.context, Action.NOOP, f"the user's context, used as is ({ctx.host})", settings=s
                )
            )
            continue
        want_tls = _tls_wanted(s, state)
        if ctx is None:
            changes = [("endpoint", "", s.endpoint or "")]
            if want_tls:
                changes.append(("tls", "", ", ".join(k for k, _ in want_tls)))
            steps.append(
                Step(StepKind.CONTEXT, s.context, Action.CREATE, f"node {s.name} needs it", tuple(changes), settings=s)
            )
            continue
        if not ctx.owned:
            problems.append(
                ForeignResource(
                    f'context "{s.context}" exists and is not managed by buildkit-farm (node "{s.name}")',
                    hint=f'remove or rename that context, or set `context = "{s.context}"` on node "{s.name}" '
                    "to use it as is",
                )
            )
            continue
        changes = _context_changes(s, ctx, want_tls)
        if any(f == "endpoint" for f, _, _ in changes):
            moved.add(s.context)
        if changes:
            steps.append(
                Step(
                    StepKind.CONTEXT,
                    s.context,
                    Action.UPDATE,
                    "endpoint or TLS changed; updated in place",
                    tuple(changes),
                    settings=s,
                )
            )
        else:
            steps.append(
                Step(
                    StepKind.CONTEXT, s.context, Action.NOOP, f"{s.endpoint}, owned by the farm, up to date", settings=s
                )
            )
    for name in _stale_contexts(desired.nodes, state):
        steps.append(
            Step(StepKind.CONTEXT, name, Action.REMOVE, "the farm created it for a node no longer in the file")
        )
    return steps, moved


def _context_changes(s: NodeSettings, ctx, want_tls: tuple[tuple[str, str], ...]) -> list[tuple[str, str, str]]:
    changes = []
    if ctx.host != s.endpoint:
        changes.append(("endpoint", ctx.host or "", s.endpoint or ""))
    if ctx.tls != want_tls or ctx.skip_tls_verify:
        # Only which files differ is shown; never their content.
        old = {k for k, _ in ctx.tls}
        new = {k for k, _ in want_tls}
        differ = sorted(k for k in old | new if dict(ctx.tls).get(k) != dict(want_tls).get(k))
        changes.append(
            (
                "tls",
                ", ".join(sorted(old)) or "(none)",
                f"{', '.join(sorted(new)) or '(none)'} (changed: {', '.join(differ) or 'skip-tls-verify'})",
            )
        )
    return changes


def plan_builder(
    desired: Desired, state: FarmState, problems: list[FarmError], view: pools.PoolView | None = None
) -> tuple[list[Step], bool]:
    """The builder's step, and whether it is (re)created, which recreates every node with it.
    A node the run does without (down, drained) never rejoins; nor does one whose pins
    move to another pool node (that node's --append takes them)."""
    bname, driver, observed = desired.builder.name, desired.builder.driver, state.builder
    if observed is None:
        return [Step(StepKind.BUILDER, bname, Action.CREATE, f"new, driver {driver}; claimed for the farm")], False
    if state.record is None:
        problems.append(
            ForeignResource(
                f'a buildx builder "{observed.name}" exists but was not created by buildkit-farm',
                hint=f"remove it (`docker buildx rm {observed.name}`) or name the farm's builder differently",
            )
        )
        return [], True
    if observed.driver != driver:
        why = "the driver changed; buildx cannot change it in place (state volumes kept)"
        return [Step(StepKind.BUILDER, bname, Action.REPLACE, why, (("driver", observed.driver, driver),))], True
    wanted = {buildx_node_name(bname, s.name): s for s in desired.nodes}
    staying = [n for n in observed.nodes if n.name in wanted]
    must_rejoin = [n for n in staying if _must_rejoin(wanted[n.name], n, desired, view)]
    # buildx cannot leave its last node: then recreating the builder is the only way.
    if not staying or (must_rejoin and len(staying) == 1):
        why = "buildx cannot leave or rejoin its only node; recreated (state volumes kept)"
        return [Step(StepKind.BUILDER, bname, Action.REPLACE, why)], True
    return [Step(StepKind.BUILDER, bname, Action.NOOP, f"exists with driver {driver}")], False


def _must_rejoin(s: NodeSettings, on: ObservedNode, desired: Desired, view: pools.PoolView | None) -> bool:
    changes, rejoin = _node_diff(s, on, None)
    if not rejoin or view is None:
        return rejoin
    return s.name not in view.spare and pools.pool_pin_step(s, on, changes, desired.nodes, view, on.name) is None


def plan_nodes(
    desired: Desired, state: FarmState, view: pools.PoolView, *, replace: bool, reclaim: bool = False
) -> list[Step]:
    """Nodes that join, change or leave the builder (all join a new or recreated one); a
    pool's pin moves in place to its active node, and a down pool node waits as it is."""
    bname = desired.builder.name
    observed = None if replace else state.builder
    wanted = {buildx_node_name(bname, s.name) for s in desired.nodes}
    steps = [
        Step(
            StepKind.NODE,
            file_node_name(bname, n.name),
            Action.REMOVE,
            "no longer in the file; it leaves the builder",
            (("endpoint", n.endpoint, ""),),
            buildx_node=n.name,
            where=n.endpoint,
        )
        for n in (observed.nodes if observed else ())
        if n.name not in wanted
    ]
    for s in desired.nodes:
        bn = buildx_node_name(bname, s.name)
        on = observed.node(bn) if observed else None
        stamp = wanted_stamp(bname, s, state.buildkits.get(bn), on.stamp if on else None, reclaim=reclaim)
        if s.name in view.spare:
            steps.append(pools.spare_node_step(s, on, state, desired.nodes, view, bn))
        elif on is None:
            # A node the farm had, rejoining (it left while down): a build may do it by itself.
            known = observed is not None and state.record is not None and bn in state.record.nodes
            steps.append(_joining(s, bn, stamp, mode=StepMode.JOIN if known else StepMode.NONE))
        else:
            steps.append(_staying(s, on, bn, stamp, desired, view))
    return steps


def _joining(s: NodeSettings, bn: str, stamp: Stamp | None, *, mode: StepMode) -> Step:
    changes = [("endpoint", "", s.buildx_endpoint)]
    if s.platforms:
        changes.append(("platforms", "", ", ".join(s.platforms)))
    why = f"joins the builder as {bn}"
    return Step(
        StepKind.NODE, s.name, Action.CREATE, why, tuple(changes), mode=mode, settings=s, buildx_node=bn, stamp=stamp
    )


def _staying(
    s: NodeSettings, on: ObservedNode, bn: str, stamp: Stamp | None, desired: Desired, view: pools.PoolView
) -> Step:
    """A node already in the builder: a pool pin move, an update in place, a rejoin, or nothing."""
    changes, rejoin = _node_diff(s, on, stamp)
    pool_step = pools.pool_pin_step(s, on, changes, desired.nodes, view, bn)
    if pool_step is not None:
        # an --append must carry the stamp too: buildx replaces a node's driver options
        return dataclasses.replace(pool_step, stamp=stamp) if pool_step.mode else pool_step
    if not changes:
        why = "endpoint, platforms and settings match"
        return Step(StepKind.NODE, s.name, Action.NOOP, why, settings=s, buildx_node=bn)
    mode = StepMode.REJOIN if rejoin else StepMode.APPEND
    why = "a setting must be cleared: leaves and rejoins" if rejoin else "updated in place (--append --node)"
    if [c[0] for c in changes] == ["stamp"]:
        # only what the node stores for its container's environment: no container is touched
        mode, why = StepMode.STAMP, "stores the settings stamp its BuildKit container carries (--append --node)"
    return Step(
        StepKind.NODE, s.name, Action.UPDATE, why, tuple(changes), mode=mode, settings=s, buildx_node=bn, stamp=stamp
    )


def plan_buildkits(
    desired: Desired,
    state: FarmState,
    view: pools.PoolView,
    *,
    replace: bool,
    moved: set[str],
    problems: list[FarmError],
    reclaim: bool = False,
) -> list[Step]:
    """Each node's BuildKit container: created, started, restarted with new settings, or removed."""
    bname = desired.builder.name
    steps = _leaving_buildkits(desired, state, replace=replace, problems=problems)
    for s in desired.nodes:
        if s.driver != "docker-container":
            continue  # only docker-container nodes have a BuildKit container the farm can see
        bn = buildx_node_name(bname, s.name)
        bk = state.buildkits.get(bn)
        if not replace and s.context not in moved and s.name in view.spare:
            steps.append(pools.spare_buildkit_step(s, bk, view))
            continue
        if bk is not None and bk.status == "unreachable" and not replace and s.context not in moved:
            problems.append(_unreachable(s.name, bk, s.endpoint or s.context))
            continue
        action, why, mode, changes = _buildkit_change(s, bk, replace=replace, moved=s.context in moved, reclaim=reclaim)
        steps.append(
            Step(
                StepKind.BUILDKIT, s.name, action, why, changes, mode=mode, settings=s, buildx_node=bn, where=s.context
            )
        )
    return steps


def _leaving_buildkits(desired: Desired, state: FarmState, *, replace: bool, problems: list[FarmError]) -> list[Step]:
    """The BuildKit containers of nodes that leave the builder: removed (state volume kept)."""
    bname = desired.builder.name
    wanted = {buildx_node_name(bname, s.name) for s in desired.nodes}
    steps: list[Step] = []
    for n in state.builder.nodes if (state.builder and not replace) else ():
        bk = state.buildkits.get(n.name)
        if n.name in wanted or bk is None or bk.status == "missing":
            continue
        if bk.status == "unreachable":
            problems.append(_unreachable(file_node_name(bname, n.name), bk, n.endpoint))
        else:
            why = "its node leaves; container removed, state volume kept"
            name = file_node_name(bname, n.name)
            steps.append(Step(StepKind.BUILDKIT, name, Action.REMOVE, why, buildx_node=n.name, where=n.endpoint))
    return steps


def _buildkit_change(
    s: NodeSettings, bk: ObservedBuildkit | None, *, replace: bool, moved: bool, reclaim: bool = False
) -> tuple[Action, str, StepMode, tuple[tuple[str, str, str], ...]]:
    """(action, reason, apply's mode, changes) for one node's BuildKit container."""
    fp = s.fingerprint
    if replace:
        return Action.CREATE, "started with the new builder (state volume reused)", StepMode.NONE, ()
    if moved:
        return (
            Action.UPDATE,
            "its endpoint moves: started on the new engine (the old container is removed)",
            StepMode.MOVE,
            (),
        )
    if bk is None or bk.status == "missing":
        return Action.CREATE, "no BuildKit container yet; bootstrapped", StepMode.NONE, ()
    if bk.settings is not None and bk.settings != fp and bk.stamp is not None and not reclaim:
        replaced_at = bk.stamp.newer_than(fp)
        if replaced_at is not None:
            return Action.NOOP, newer_reason(s, bk, replaced_at), StepMode.NONE, ()
    if bk.status != "running" and bk.settings == fp:
        return Action.UPDATE, f"container is {bk.status}; started", StepMode.START, ()
    if bk.settings == fp and (drift := runs_differently(s, bk)):
        why = f"runs with other settings than the file's ({drift}); restarted, state volume kept"
        return Action.UPDATE, why, StepMode.RESTART, ()
    if bk.settings is None:
        why = (
            "a BuildKit container the farm did not create (no settings stamped on it); "
            "restarted with the file's settings, state volume kept"
        )
        return Action.UPDATE, why, StepMode.RESTART, (("settings", "(unknown: not created by the farm)", fp),)
    if bk.settings != fp:
        changes = tuple(setting_diffs(s, bk)) or (("settings", bk.settings, fp),)
        return Action.UPDATE, "settings changed; restarted alone, state volume kept", StepMode.RESTART, changes
    container = (bk.container_id or "")[:12]
    why = f"running BuildKit {bk.version or '(version unknown)'}, settings applied (container {container})"
    return Action.NOOP, why, StepMode.NONE, ()


def _stale_contexts(desired: tuple[NodeSettings, ...], state: FarmState) -> list[str]:
    """Contexts this builder's record says the farm created, still there, owned, unused."""
    if state.record is None:
        return []
    wanted = {s.context for s in desired}
    out = []
    for name in state.record.contexts:
        ctx = state.contexts.get(name)
        if name in wanted or ctx is None or not ctx.owned or state.context_users.get(name):
            continue
        out.append(name)
    return out


def _node_diff(s: NodeSettings, on: ObservedNode, wanted: Stamp | None) -> tuple[list[tuple[str, str, str]], bool]:
    """What differs between a desired node and buildx's stored one, and whether something must
    be cleared. `wanted`: the stamp the node is to store (None: not compared)."""
    changes: list[tuple[str, str, str]] = []
    # buildx stores the `default` context as its host URL, not by name.
    same_default = s.buildx_endpoint == "default" and "://" in on.endpoint
    if on.endpoint != s.buildx_endpoint and not same_default:
        changes.append(("endpoint", on.endpoint, s.buildx_endpoint))
    rejoin = _stored_settings_diff(s, on, changes)
    if wanted is not None and on.stamp != wanted:  # a stamp applied NOW differs from any stored one
        # buildx rewrites a stored config, so its text (and every setting) is compared by fingerprint.
        old = on.stamp.settings if on.stamp else "(none)"
        shown = old if old != wanted.settings else f"{old} (applied {on.stamp and on.stamp.applied})"
        changes.append(("stamp", shown, wanted.settings))
    return changes, rejoin


def _stored_settings_diff(s: NodeSettings, on: ObservedNode, changes: list[tuple[str, str, str]]) -> bool:
    """Add what buildx stores differently from the settings; whether a setting must be cleared."""
    rejoin = False
    if sorted(on.platforms) != sorted(s.platforms):
        changes.append(("platforms", ", ".join(on.platforms) or "(detected)", ", ".join(s.platforms) or "(detected)"))
        rejoin |= not s.platforms  # `--append` cannot clear pinned platforms
    if on.driver_opts != tuple(sorted(s.driver_opts)):
        changes.append(("driver_opts", _kv(on.driver_opts), _kv(s.driver_opts)))
        rejoin |= not s.driver_opts
    if on.flags != buildx_flags(s) and tuple(without_buildx_additions(on.flags, s)) != tuple(
        shlex.split(s.buildkitd_flags or "")
    ):
        changes.append(("buildkitd_flags", " ".join(on.flags) or "(none)", " ".join(buildx_flags(s)) or "(none)"))
        rejoin |= not buildx_flags(s)
    if on.has_config != bool(s.buildkitd_config):
        changes.append(
            ("buildkitd_config", "set" if on.has_config else "(none)", "set" if s.buildkitd_config else "(none)")
        )
        rejoin |= not s.buildkitd_config
    return rejoin


def _kv(pairs) -> str:
    return ", ".join(f"{k}={v}" for k, v in pairs) or "(none)"


_ORDER = {
    (StepKind.CONTEXT, Action.CREATE): 0,
    (StepKind.CONTEXT, Action.UPDATE): 0,
    (StepKind.CONTEXT, Action.NOOP): 0,
    (StepKind.CONTEXT, Action.REMOVE): 8,
    (StepKind.BUILDER, Action.REPLACE): 1,
    (StepKind.BUILDER, Action.CREATE): 1,
    (StepKind.BUILDER, Action.NOOP): 1,
    (StepKind.NODE, Action.REMOVE): 2,
    (StepKind.NODE, Action.UPDATE): 4,
    (StepKind.NODE, Action.CREATE): 4,
    (StepKind.NODE, Action.NOOP): 4,
    (StepKind.BUILDKIT, Action.REMOVE): 5,
    (StepKind.BUILDKIT, Action.UPDATE): 6,
    (StepKind.BUILDKIT, Action.CREATE): 6,
    (StepKind.BUILDKIT, Action.NOOP): 6,
}


def _ordered(steps: list[Step]) -> tuple[Step, ...]:
    # Leave before append (a renamed node keeps its endpoint: no "duplicate endpoint"); a
    # drained node, which answers, leaves after the others joined (buildx cannot leave its last node).
    return tuple(
        sorted(steps, key=lambda st: 4.5 if st.mode is StepMode.DRAINED else _ORDER.get((st.kind, st.action), 9))
    )


# ---------------------------------------------------------------------------- down
def make_down_plan(desired: Desired, state: FarmState, *, keep_state: bool = False) -> Plan:
    """Remove the builder and the contexts the farm owns; nothing else."""
    bname = desired.builder.name
    steps: list[Step] = []
    if state.builder is None:
        steps.append(Step(StepKind.BUILDER, bname, Action.NOOP, "does not exist"))
    elif state.record is None:
        steps.append(Step(StepKind.BUILDER, bname, Action.NOOP, "not created by buildkit-farm; left alone"))
    else:
        what = "state volumes kept" if keep_state else "state volumes removed"
        steps.append(
            Step(
                StepKind.BUILDER,
                bname,
                Action.REMOVE,
                f"its BuildKit containers removed, {what}",
                mode=StepMode.KEEP_STATE if keep_state else StepMode.NONE,
            )
        )
    for s in desired.nodes:
        ctx = state.contexts.get(s.context)
        if ctx is None:
            continue
        if not s.owns_context or not ctx.owned:
            steps.append(Step(StepKind.CONTEXT, s.context, Action.NOOP, "not owned by the farm; left alone"))
        elif state.context_users.get(s.context):
            steps.append(
                Step(
                    StepKind.CONTEXT,
                    s.context,
                    Action.NOOP,
                    f"still used by builder {', '.join(state.context_users[s.context])}; left",
                )
            )
        else:
            steps.append(Step(StepKind.CONTEXT, s.context, Action.REMOVE, "owned by the farm", settings=s))
    for name in _stale_contexts(desired.nodes, state):
        steps.append(
            Step(StepKind.CONTEXT, name, Action.REMOVE, "the farm created it for a node no longer in the file")
        )
    return Plan(builder=bname, driver=desired.builder.driver, steps=tuple(steps))
