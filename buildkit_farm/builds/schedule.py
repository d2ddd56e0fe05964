"""Scheduling (pure, part of stage 1, resolve): every platform of every target onto the node that builds it.

Strict native scheduling: a platform goes to the node the farm file pins it to, as buildx
itself sends it; a platform no node pins is refused unless the target allows emulating it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from buildkit_farm.errors import BuildError, UsageError

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


@dataclass(frozen=True)
class Assignment:
    """Which node builds one platform, and whether it has to emulate it."""

    platform: str
    node: str
    emulated: bool


def schedule(
    platforms: Sequence[str], nodes: Sequence[NodeView], *, target: str, allow_emulation: Sequence[str] = ()
) -> tuple[Assignment, ...]:
    """Pin every platform to a node, strictly.

    A platform goes to the first node that pins it, as buildx sends it (build/driver.go:
    the first node whose pinned platforms match); that node must be up, else the build
    fails (exit 1) naming it. A platform no node pins is refused (exit 2) unless the target
    allows emulating it; then it goes where buildx sends it: the first node whose BuildKit
    reports the platform, else the first node.
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
        if platform not in allow_emulation:
            raise UsageError(
                f'target "{target}": no node is pinned to {platform}; buildx would emulate it on '
                f'"{_emulating_node(platform, nodes)}"',
                hint=f"pin {platform} to a node in the farm file, "
                f'or add allow_emulation = ["{platform}"] to the target',
            )
        assignments.append(Assignment(platform, _emulating_node(platform, nodes), emulated=True))
    return tuple(assignments)


def _emulating_node(platform: str, nodes: Sequence[NodeView]) -> str:
    # buildx's own rule (build/driver.go): the first node whose platforms match, else node 0.
    live = [n for n in nodes if n.up] or list(nodes)
    for node in live:
        if platform in node.supported:
            return node.name
    return live[0].name if live else "(no node)"


def node_views(nodes: Sequence[NodeSettings], status: FarmStatus) -> tuple[NodeView, ...]:
    """Join the farm file's nodes (pins, contexts) with what `ensure_converged` observed.

    `status` is the reconciler's `FarmStatus`: per file node its status, BuildKit version
    and the platforms its BuildKit detected (native and emulated).
    """
    seen = {n.name: n for n in status.nodes}
    # Pools: a platform is pinned (in buildx, and so here) to its pool's active node only.
    active = {p.platform: p.active for p in getattr(status, "pools", ())}
    return tuple(_view(settings, seen.get(settings.name), active) for settings in nodes)


def _view(settings: NodeSettings, node: NodeStatus | None, active: Mapping[str, str | None]) -> NodeView:
    pinned = tuple(p for p in settings.platforms if active.get(p, settings.name) == settings.name)
    if node is None:
        return NodeView(settings.name, settings.context, False, pinned, status="missing")
    return NodeView(
        name=settings.name,
        context=node.context or settings.context,
        up=node.status == "running",
        pinned=pinned,
        supported=tuple(node.detected),
        buildkit_version=node.version,
        status=node.status,
    )
