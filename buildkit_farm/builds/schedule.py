"""Scheduling (pure, part of stage 1, resolve): every platform of every target onto the node that builds it.

Strict native scheduling: a platform goes to the node the farm file pins it to, as buildx
itself sends it; a platform no node pins is refused unless the target allows emulating it.
A drained node (`farm drain`) holds no pin and is not in the runner's builder: a platform
whose only nodes are drained is emulated elsewhere where the target allows it, else refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from buildkit_farm.errors import BuildError, NodeDrained, UsageError

if TYPE_CHECKING:
    from buildkit_farm.farmfile.desired import NodeSettings
    from buildkit_farm.reconcile.converge import FarmStatus
    from buildkit_farm.reconcile.status import NodeStatus


@dataclass(frozen=True)
class NodeView:
    """What scheduling needs to know about one node (config + observation)."""

    name: str
    context: str
    up: bool
    pinned: tuple[str, ...]  # platforms the farm file pins to it, in order
    supported: tuple[str, ...] = ()  # platforms its BuildKit reports (native + emulated)
    buildkit_version: str | None = None
    status: str = "running"
    drained: str | None = None  # "by WHO at WHEN": takes no new builds, not even an emulated one
    file_pins: tuple[str, ...] = ()  # what the farm file pins to it (while drained, `pinned` is empty)
    in_builder: bool = True  # in the runner's buildx builder (buildx sends builds only there)

    @property
    def takes_builds(self) -> bool:
        return self.in_builder and not self.drained


@dataclass(frozen=True)
class Assignment:
    """Which node builds one platform, and whether it has to emulate it."""

    platform: str
    node: str
    emulated: bool
    why: str = ""  # why it is emulated, for people: e.g. 'its node "node2" is drained (by … at …)'


def schedule(
    platforms: Sequence[str], nodes: Sequence[NodeView], *, target: str, allow_emulation: Sequence[str] = ()
) -> tuple[Assignment, ...]:
    """Pin every platform to a node, strictly.

    A platform goes to the first node that pins it, as buildx sends it (build/driver.go:
    the first node whose pinned platforms match); that node must be up, else the build
    fails (exit 1) naming it. A platform no node pins is refused (exit 2) unless the target
    allows emulating it; then it goes where buildx sends it: the first node of the builder
    whose BuildKit reports the platform, else the builder's first node. A platform pinned
    only to drained nodes is emulated the same way when the target allows it, else refused
    (`NodeDrained`, exit 1); a drained node never takes it.
    """
    assignments = []
    for platform in platforms:
        pinned = [n for n in nodes if platform in n.pinned]
        if pinned and pinned[0].up:
            assignments.append(Assignment(platform, pinned[0].name, emulated=False))
            continue
        if pinned:
            raise BuildError(
                f'target "{target}": {platform} is pinned to node "{pinned[0].name}", which is {pinned[0].status}',
                hint="start the node's engine and run `farm up`, or drop the platform from the target",
            )
        drained = [n for n in nodes if platform in n.file_pins and n.drained]
        if drained:
            assignments.append(_instead_of_drained(platform, nodes, drained, target, allow_emulation))
            continue
        if platform not in allow_emulation:
            raise UsageError(
                f'target "{target}": no node is pinned to {platform}; buildx would emulate it on '
                f'"{_emulating_node(platform, nodes)}"',
                hint=f"pin {platform} to a node in the farm file, "
                f'or add allow_emulation = ["{platform}"] to the target',
            )
        assignments.append(Assignment(platform, _emulating_node(platform, nodes), emulated=True))
    return tuple(assignments)


def _instead_of_drained(
    platform: str, nodes: Sequence[NodeView], drained: Sequence[NodeView], target: str, allow: Sequence[str]
) -> Assignment:
    """A platform whose only nodes are drained (or down): emulated on another node when the
    target allows it, else refused (`NodeDrained`)."""
    why = ", ".join(f'node "{n.name}" is drained ({n.drained})' for n in drained)
    down = [n.name for n in nodes if platform in n.file_pins and not n.drained]
    if down:
        why += f", the others are down ({', '.join(down)})"
    if platform in allow and any(n.takes_builds and n.up for n in nodes):
        return Assignment(platform, _emulating_node(platform, nodes), emulated=True, why=why)
    if platform in allow:
        raise NodeDrained(
            f'target "{target}": {platform}: {why}, and no other node is up to emulate it',
            hint="undrain a node (`farm undrain NODE`) or start one",
        )
    raise NodeDrained(
        f'target "{target}": {platform}: {why}' + ("" if down else " and no other node is pinned to it"),
        hint=f"undrain it when its maintenance is done (`farm undrain NODE`), pin {platform} to a second node "
        f'(a pool), or let the target emulate it elsewhere: allow_emulation = ["{platform}"]',
    )


def _emulating_node(platform: str, nodes: Sequence[NodeView]) -> str:
    # buildx's own rule (build/driver.go): the first node of the builder whose platforms match,
    # else node 0. A drained node is not in the builder: never that one.
    candidates = [n for n in nodes if n.takes_builds] or list(nodes)
    live = [n for n in candidates if n.up] or candidates
    for node in live:
        if platform in node.supported:
            return node.name
    return live[0].name if live else "(no node)"


def node_views(nodes: Sequence[NodeSettings], status: FarmStatus) -> tuple[NodeView, ...]:
    """Join the farm file's nodes (pins, contexts) with what `ensure_converged` observed.

    `status` is the reconciler's `FarmStatus`: per file node its status, BuildKit version,
    the platforms its BuildKit detected (native and emulated) and whether it is drained; and
    the runner's builder, whose order the views follow (buildx matches an unpinned platform
    in that order; a node that left it, drained or down, comes after, out of the builder).
    """
    seen = {n.name: n for n in status.nodes}
    # Pools: a platform is pinned (in buildx, and so here) to its pool's active node only.
    active = {p.platform: p.active for p in getattr(status, "pools", ())}
    order = getattr(status, "in_builder", None)
    views = [_view(settings, seen.get(settings.name), active) for settings in nodes]
    if not order:  # no builder observed (or not known): the file's order, every node in it
        return tuple(views)
    place = {name: i for i, name in enumerate(order)}
    views.sort(key=lambda v: place.get(v.name, len(place)))
    return tuple(replace(v, in_builder=v.name in place) for v in views)


def _view(settings: NodeSettings, node: NodeStatus | None, active: Mapping[str, str | None]) -> NodeView:
    pinned = tuple(p for p in settings.platforms if active.get(p, settings.name) == settings.name)
    if node is None:
        return NodeView(settings.name, settings.context, False, pinned, status="missing")
    return NodeView(
        name=settings.name,
        context=node.context or settings.context,
        up=node.status == "running",
        pinned=() if node.drained else pinned,
        supported=tuple(node.detected),
        buildkit_version=node.version,
        status=node.status,
        drained=node.drained,
        file_pins=tuple(settings.platforms),
    )
