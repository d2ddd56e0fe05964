"""Node pools: which node builds each platform now, from the file's pins and the observed health.

A platform pinned to several nodes has a pool: those nodes in file order, the order of
preference. buildx has no pools (0.13: a platform is pinned to one node; `buildx create
--append --node C --platform P` moves P's pin from the node that had it to C, and buildx
sends P to its pinned node). So the farm keeps exactly one pin per platform in buildx, on
the pool's *active* node, the first healthy member; the others stand by, joined to the
builder with only the pins they are active for (a node with none is not chosen by buildx
for a pinned platform: it matches only platforms no node pins). A drained node (`farm
drain`) is out of its pools and, since it must not match those either, out of the
runner's builder (`drained_node_step`); its BuildKit stays as it is.

Pure: no IO, no Docker. `resolve` takes the file's node settings and each node's observed
status; the plan uses `active_pins` as the platforms it wants in buildx, so `farm up`
moves a pin only when the active node changes, and a second `farm up` plans nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from buildkit_farm.errors import NoHealthyNode
from buildkit_farm.farmfile.desired import Desired, NodeSettings, pools_of
from buildkit_farm.reconcile.names import buildx_node_name
from buildkit_farm.reconcile.steps import Action, Step, StepKind, StepMode

if TYPE_CHECKING:
    from buildkit_farm.reconcile.observe import FarmState, ObservedBuildkit, ObservedNode

# A node is healthy unless its engine did not answer: a BuildKit that is missing or stopped
# on an engine that answers is (re)started by `farm up`.
UNHEALTHY = frozenset({"unreachable"})


@dataclass(frozen=True)
class Pool:
    """One platform's pool as observed: who builds it now, who stands by, who is down."""

    platform: str
    members: tuple[str, ...]  # the file's order: the order of preference
    active: str | None  # the first healthy member; None when every member is down
    standby: tuple[str, ...]  # healthy members after the active one
    down: tuple[str, ...]  # members that are down (or left out of this run)

    def to_dict(self) -> dict:
        return {
            "platform": self.platform,
            "members": list(self.members),
            "active": self.active,
            "standby": list(self.standby),
            "down": list(self.down),
        }


@dataclass(frozen=True)
class PoolView:
    """Every pinned platform's pool, and what that means for each node."""

    pools: tuple[Pool, ...]
    active_pins: Mapping[str, tuple[str, ...]]  # node -> the platforms buildx must pin to it now
    spare: frozenset[str]  # down nodes the farm can do without (every needed platform has another)
    drained: frozenset[str] = frozenset()  # nodes drained on their engine (`farm drain`): no new builds

    def pool(self, platform: str) -> Pool | None:
        return next((p for p in self.pools if p.platform == platform), None)

    def stranded(self, needed: Collection[str] | None = None) -> tuple[Pool, ...]:
        """The needed platforms' pools with no healthy member (all of them when `needed` is None)."""
        return tuple(p for p in self.pools if p.active is None and (needed is None or p.platform in needed))

    @property
    def has_pools(self) -> bool:
        return any(len(p.members) > 1 for p in self.pools)

    @property
    def members(self) -> frozenset[str]:
        """The nodes that belong to a pool of two or more."""
        return frozenset(m for p in self.pools if len(p.members) > 1 for m in p.members)


def resolve(
    settings: Sequence[NodeSettings],
    status_of: Mapping[str, str],
    *,
    needed: Collection[str] | None = None,
    exclude: Collection[str] = (),
    drained: Collection[str] = (),
) -> PoolView:
    """Each platform's active node and standbys.

    `status_of`: file node name -> observed status (running | stopped | missing |
    unreachable); a node not in it counts as healthy (not observed yet). `exclude`: nodes
    to treat as down for this run (a node that died during a build). `drained`: nodes that
    take no new builds (`farm drain`): down for the pools, and always spare. `needed`: the
    platforms this run builds (None: every pinned one, as `farm up` needs); a down node is
    spare when each of its needed platforms has another healthy member (or a drained one:
    then the drain decides, see `builds/schedule.py`), or when none of them is needed.
    """
    down = {s.name for s in settings if status_of.get(s.name) in UNHEALTHY or s.name in exclude or s.name in drained}
    active_pins: dict[str, list[str]] = {s.name: [] for s in settings}
    pools = [_pool(platform, members, down) for platform, members in pools_of(settings).items()]
    for pool in pools:
        if pool.active is not None:
            active_pins[pool.active].append(pool.platform)
    held = frozenset(s.name for s in settings if s.name in drained)
    return PoolView(
        pools=tuple(pools),
        active_pins={name: tuple(pins) for name, pins in active_pins.items()},
        spare=frozenset(_spare(settings, pools, down, needed, held)) | held,
        drained=held,
    )


def _pool(platform: str, members: tuple[str, ...], down: Collection[str]) -> Pool:
    healthy = [m for m in members if m not in down]
    return Pool(
        platform=platform,
        members=members,
        active=healthy[0] if healthy else None,
        standby=tuple(healthy[1:]),
        down=tuple(m for m in members if m in down),
    )


def _spare(
    settings: Sequence[NodeSettings],
    pools: Sequence[Pool],
    down: Collection[str],
    needed: Collection[str] | None,
    drained: Collection[str],
) -> set[str]:
    """Down nodes whose needed platforms all have another healthy node (or a drained one)."""
    by_platform = {p.platform: p for p in pools}
    spare = set()
    for s in settings:
        if s.name not in down or not s.platforms:
            continue  # a node building what it detects has no pool to stand in for it
        wanted = [by_platform[p] for p in s.platforms if needed is None or p in needed]
        if all(p.active is not None or set(p.members) & set(drained) for p in wanted):
            spare.add(s.name)
    return spare


def pinned_now(settings: Sequence[NodeSettings], view: PoolView) -> tuple[NodeSettings, ...]:
    """The settings as buildx must hold them now: each node pinned to what it is active for.

    A down node keeps no pin (its platforms moved to a standby); without pools this is the
    file's settings unchanged.
    """
    if not view.has_pools and not view.spare:
        return tuple(settings)
    out = []
    for s in settings:
        pins = view.active_pins.get(s.name, s.platforms)
        out.append(s if pins == s.platforms else replace(s, platforms=pins))
    return tuple(out)


def pins_taken(name: str, observed_pins: Iterable[str], wanted: Sequence[NodeSettings]) -> dict[str, str]:
    """Platform -> the node taking it, for each pin buildx has on `name` that another node
    will be appended with (buildx moves a pin: the append clears it here)."""
    takers = {p: s.name for s in wanted if s.name != name for p in s.platforms}
    return {p: takers[p] for p in observed_pins if p in takers}


def no_healthy_node(stranded: Sequence[Pool], errors: Mapping[str, str | None]) -> NoHealthyNode:
    """The error when a platform has no healthy node: the platform and why each member is out."""
    return NoHealthyNode(
        pools=tuple((p.platform, tuple((m, errors.get(m) or "down") for m in p.members)) for p in stranded)
    )


# ---------------------------------------------------------------------------- pools in the plan
# buildx (0.13) loads every node of a builder on `buildx create --append` and rolls back
# when one does not answer, so a down node leaves the builder before a pin can move; it
# rejoins when it answers (its BuildKit container and state stay on its engine).
def pool_view(
    desired: Desired, state: FarmState, *, needed: Collection[str] | None = None, exclude: Collection[str] = ()
) -> PoolView:
    """The pools as observed; `NoHealthyNode` when a needed platform's pool has no healthy node.

    A drained node takes no new builds: its pools' next nodes build its platforms. A needed
    platform whose nodes are all drained (or down) is no error here: the build's schedule
    emulates it elsewhere where its targets allow that, and refuses it otherwise
    (`NodeDrained`, builds/schedule.py), since only the targets say which they allow.
    """
    status_of, errors, drained = {}, {}, set()
    for s in desired.nodes:
        bk = state.buildkits.get(buildx_node_name(desired.builder.name, s.name))
        if bk is not None:
            status_of[s.name] = bk.status
            errors[s.name] = f"{bk.status}: {bk.error}" if bk.error else bk.status
            if bk.drained:
                drained.add(s.name)
    view = resolve(desired.nodes, status_of, needed=needed, exclude=exclude, drained=drained)
    stranded = [p for p in view.stranded(needed) if len(p.members) > 1 and not set(p.members) & drained]
    if stranded:
        raise no_healthy_node(stranded, errors)
    return view


def standing_in(name: str, view: PoolView) -> str:
    """What happens to a node's platforms while it is down or drained."""
    mine = [p for p in view.pools if name in p.members]
    covered = [f"{p.platform} on {p.active}" for p in mine if p.active]
    parts = ["its pools build " + ", ".join(covered)] if covered else []
    alone = [p.platform for p in mine if p.active is None]
    if alone and name in view.drained:
        parts.append(
            f"no other node builds {', '.join(alone)}: emulated on another node for a target that allows it "
            "(allow_emulation), refused for any other"
        )
    return "; ".join(parts) or "not needed by this run"


def spare_node_step(
    s: NodeSettings, on: ObservedNode | None, state: FarmState, desired, view: PoolView, bn: str
) -> Step:
    """A down node the farm can do without: reported, never an error; it waits as it is."""
    bk = state.buildkits.get(bn)
    if s.name in view.drained and bk is not None:
        return drained_node_step(s, on, bk.drained or "", view, bn)
    down = f"down ({bk.error})" if bk is not None and bk.status == "unreachable" else "left out of this run"
    if on is None:
        return Step(StepKind.NODE, s.name, Action.NOOP, f"{down}; joins when it answers; {standing_in(s.name, view)}")
    taken = pins_taken(s.name, on.platforms, desired)
    moves = ", ".join(f"{p} to {n}" for p, n in taken.items())
    return Step(
        StepKind.NODE,
        s.name,
        Action.NOOP,
        f"{down}; " + (f"its pins move ({moves})" if moves else standing_in(s.name, view)),
        settings=s,
        buildx_node=bn,
        where=on.endpoint,
    )


def drained_node_step(s: NodeSettings, on: ObservedNode | None, drained: str, view: PoolView, bn: str) -> Step:
    """A drained node is not in this runner's builder, so buildx sends it nothing: no pinned
    platform, and no emulated one either (buildx sends a platform no node pins to the first
    node whose BuildKit detects it, build/driver.go in 0.13 and 0.29). `buildx create
    --leave` edits only this runner's builder file: the node's BuildKit keeps running, with
    the builds it has, for every runner. It rejoins (+ join) once undrained."""
    why = f"drained {drained}"
    if on is None:
        why += "; not in this runner's builder, so no build is sent to it; joins again when undrained"
        return Step(StepKind.NODE, s.name, Action.NOOP, f"{why}; {standing_in(s.name, view)}")
    if all(name in view.spare for name in view.active_pins):  # no node stays to take builds
        why += "; stays in the builder: buildx cannot leave its last node (every other node is drained or down)"
        return Step(StepKind.NODE, s.name, Action.NOOP, why, settings=s, buildx_node=bn, where=on.endpoint)
    return Step(
        StepKind.NODE,
        s.name,
        Action.REMOVE,
        f"{why}; leaves this runner's builder so buildx sends it no build (its BuildKit keeps running and "
        f"finishes the builds it has); joins again when undrained; {standing_in(s.name, view)}",
        mode=StepMode.DRAINED,
        settings=s,
        buildx_node=bn,
        where=on.endpoint,
    )


def spare_buildkit_step(s: NodeSettings, bk: ObservedBuildkit | None, view: PoolView) -> Step:
    """A node the run does without (down, or drained): left as it is, its pools served by others."""
    down = bk is not None and bk.status == "unreachable"
    why = f"{bk.status}: {bk.error}" if down and bk is not None else "left out of this run"
    if bk is not None and bk.drained:
        why = f"drained {bk.drained}; running builds finish, no new ones start"
    return Step(StepKind.BUILDKIT, s.name, Action.NOOP, f"{why}; {standing_in(s.name, view)}", settings=s)


def pool_pin_step(s: NodeSettings, on: ObservedNode, changes, desired, view: PoolView, bn: str) -> Step | None:
    """A pin that moves inside a pool: `--append --platform` here, or nothing here when another
    node's append takes this node's pins away (buildx moves a pin). None: not a pool move."""
    if [c[0] for c in changes] != ["platforms"]:
        return None
    pooled = {p.platform for p in view.pools if len(p.members) > 1}
    old, new = set(on.platforms), set(s.platforms)
    if not (old ^ new) <= pooled:
        return None
    taken = pins_taken(s.name, old - new, desired)
    if new <= old and set(taken) == old - new:
        moves = ", ".join(f"{p} to {n}" for p, n in taken.items())
        return Step(
            StepKind.NODE,
            s.name,
            Action.NOOP,
            f"its pool pins move ({moves}) with that node's --append",
            buildx_node=bn,
            settings=s,
        )
    if not new:
        return None
    active = ", ".join(sorted(new - old))
    return Step(
        StepKind.NODE,
        s.name,
        Action.UPDATE,
        f"pool: now the active node for {active or 'fewer platforms'}; the pin moves in place (--append)",
        tuple(changes),
        mode=StepMode.PIN,
        settings=s,
        buildx_node=bn,
    )


def leave_if_blocking(steps: list[Step], state: FarmState, view: PoolView) -> None:
    """A down node still in the builder leaves it when anything else changes (an append or
    a bootstrap: buildx loads every node of the builder for both)."""
    if not any(st.action is not Action.NOOP for st in steps):
        return
    for i, st in enumerate(steps):
        bk = state.buildkits.get(st.buildx_node or "")
        if (
            st.kind is StepKind.NODE
            and st.name in view.spare
            and st.buildx_node
            and bk is not None
            and bk.status == "unreachable"
        ):
            steps[i] = replace(
                st,
                action=Action.REMOVE,
                mode=StepMode.LEAVE,
                reason="down; leaves the builder so the others can change (buildx loads every node), "
                f"rejoins when it answers; {standing_in(st.name, view)}",
            )
