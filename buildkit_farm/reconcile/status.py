"""The farm as observed, node by node: what `farm status` shows and what the build schedules on.

Pure: derived from the desired state and an observation; reads nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from buildkit_farm.farmfile.desired import Desired
from buildkit_farm.reconcile.names import buildx_node_name
from buildkit_farm.reconcile.observe import FarmState


def split_native(detected: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Detected platforms → (native, emulated).

    BuildKit lists its engine's own platform first. Native are that architecture (any
    variant), plus 386 on amd64 and 32-bit arm on arm64, which those CPUs run directly;
    the rest runs under emulation (QEMU via binfmt_misc).
    """
    if not detected:
        return (), ()
    first = detected[0].split("/")
    os_, arch = first[0], first[1] if len(first) > 1 else ""
    extra = {"amd64": {"386"}, "arm64": {"arm"}}.get(arch, set())
    native: list[str] = []
    emulated: list[str] = []
    for p in detected:
        parts = p.split("/")
        same = parts[0] == os_ and len(parts) > 1 and (parts[1] == arch or parts[1] in extra)
        (native if same else emulated).append(p)
    return tuple(native), tuple(emulated)


@dataclass(frozen=True)
class NodeStatus:
    """One node as `farm status` and the build see it."""

    name: str
    buildx_node: str
    context: str
    endpoint: str | None
    status: str  # running | stopped | missing | unreachable
    version: str | None
    pinned: tuple[str, ...]
    detected: tuple[str, ...]
    native: tuple[str, ...]
    emulated: tuple[str, ...]
    error: str | None = None
    drained: str | None = None  # "by WHO at WHEN": takes no new builds (`farm drain`)

    @property
    def platforms(self) -> tuple[str, ...]:
        """What the node builds: its pinned platforms, else all it detected."""
        return self.pinned or self.detected

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "buildx_node": self.buildx_node,
            "context": self.context,
            "endpoint": self.endpoint,
            "status": self.status,
            "buildkit_version": self.version,
            "pinned": list(self.pinned),
            "detected": list(self.detected),
            "native": list(self.native),
            "emulated": list(self.emulated),
            **({"error": self.error} if self.error else {}),
            **({"drained": self.drained} if self.drained else {}),
        }


def node_statuses(desired: Desired, state: FarmState) -> tuple[NodeStatus, ...]:
    """Each file node, in file order, as observed."""
    out = []
    for s in desired.nodes:
        bn = buildx_node_name(desired.builder.name, s.name)
        bk = state.buildkits.get(bn)
        ctx = state.contexts.get(s.context)
        detected = bk.platforms if bk else ()
        native, emulated = split_native(detected)
        out.append(
            NodeStatus(
                name=s.name,
                buildx_node=bn,
                context=s.context,
                endpoint=s.endpoint or (ctx.host if ctx else None),
                status=bk.status if bk else ("missing" if s.driver == "docker-container" else "not observed"),
                version=bk.version if bk else None,
                pinned=s.platforms,
                detected=detected,
                native=native,
                emulated=emulated,
                error=bk.error if bk else None,
                drained=bk.drained if bk else None,
            )
        )
    return tuple(out)


def verify(statuses: tuple[NodeStatus, ...]) -> tuple[str, ...]:
    """Problems that make the farm unusable: a node not running, or a pinned platform it lacks."""
    problems = []
    for n in statuses:
        if n.status == "not observed":
            continue
        if n.status != "running":
            problems.append(f'node "{n.name}" is {n.status}' + (f": {n.error}" if n.error else ""))
        elif n.version is None:
            problems.append(
                f'node "{n.name}": BuildKit did not report its version' + (f" ({n.error})" if n.error else "")
            )
        else:
            missing = [p for p in n.pinned if p not in n.detected]
            if missing:
                problems.append(
                    f'node "{n.name}": pinned {", ".join(missing)} not among the platforms BuildKit detected '
                    f"({', '.join(n.detected) or 'none'})"
                )
    return tuple(problems)
