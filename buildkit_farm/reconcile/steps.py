"""The plan's vocabulary: a small closed set of actions, a `Step` on one resource, a `Plan`.

Plain frozen data, shared by the planners (`plan`, `pools`), `apply` (one handler per kind
and action), `render` and the build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from buildkit_farm.farmfile.desired import NodeSettings
    from buildkit_farm.reconcile.stamp import Stamp


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    REMOVE = "remove"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "remove": "-", "no-op": "="}[self.value]


@dataclass(frozen=True)
class Step:
    """One thing to do (or, for NOOP, not to do) to one resource."""

    kind: str  # context | builder | node | buildkit
    name: str  # context name, builder name, or the file's node name
    action: Action
    reason: str
    changes: tuple[tuple[str, str, str], ...] = ()  # (field, old, new), for people
    mode: str = ""  # the variant apply uses: node ~ "append" | "rejoin"; buildkit ~ "start" | "restart" | "move"
    settings: NodeSettings | None = None  # the node's desired settings (context, node, buildkit)
    buildx_node: str | None = None
    where: str | None = None  # the context or host to act through (buildkit steps)
    stamp: Stamp | None = None  # node steps: what the node's BuildKit container is to carry

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action.value,
            "symbol": self.action.symbol,
            "reason": self.reason,
            "changes": [{"field": f, "old": o, "new": n} for f, o, n in self.changes],
            **({"mode": self.mode} if self.mode else {}),
            **({"buildx_node": self.buildx_node} if self.buildx_node else {}),
        }


@dataclass(frozen=True)
class Plan:
    builder: str
    driver: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def changes(self) -> tuple[Step, ...]:
        """The steps that change something; empty means converged."""
        return tuple(s for s in self.steps if s.action is not Action.NOOP)

    @property
    def converged(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict:
        return {
            "builder": self.builder,
            "driver": self.driver,
            "converged": self.converged,
            "steps": [s.to_dict() for s in self.steps],
        }
