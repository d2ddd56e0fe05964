"""The plan's vocabulary: a small closed set of actions, a `Step` on one resource, a `Plan`.

Plain frozen data, shared by the planners (`plan`, `pools`), `apply` (one handler per kind
and action), `render` and the build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, NoReturn

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


class StepKind(str, Enum):
    """What a step acts on. str-valued: JSON and text show the plain word."""

    CONTEXT = "context"
    BUILDER = "builder"
    NODE = "node"
    BUILDKIT = "buildkit"
    BOOTSTRAP = "bootstrap"  # reported after apply: every node's BuildKit started

    def __str__(self) -> str:  # f-strings show the word on every Python (3.11 changed the default)
        return self.value


class StepMode(str, Enum):
    """The variant of a step apply runs; NONE for the plain one."""

    NONE = ""
    JOIN = "join"  # node +: a pool node, known to buildx, joins again
    APPEND = "append"  # node ~: `buildx create --append` updates it in place
    REJOIN = "rejoin"  # node ~: leaves, then joins again (what --append cannot change)
    PIN = "pin"  # node ~: a platform pin moves inside a pool
    LEAVE = "leave"  # node -: a down pool node leaves the builder
    DRAINED = "drained"  # node -: a drained node leaves this runner's builder (its BuildKit keeps running)
    STAMP = "stamp"  # node ~: only the settings stamp the node carries is rewritten
    START = "start"  # buildkit ~: a stopped container is started
    RESTART = "restart"  # buildkit ~: removed and started again (state volume kept)
    MOVE = "move"  # buildkit ~: its endpoint moved; started on the new engine
    KEEP_STATE = "keep-state"  # builder -: `buildx rm --keep-state`

    def __str__(self) -> str:
        return self.value

    @property
    def kind(self) -> StepKind | None:
        """The kind of step this mode belongs to (None: any)."""
        match self:
            case StepMode.NONE:
                return None
            case (
                StepMode.JOIN
                | StepMode.APPEND
                | StepMode.REJOIN
                | StepMode.PIN
                | StepMode.LEAVE
                | StepMode.DRAINED
                | StepMode.STAMP
            ):
                return StepKind.NODE
            case StepMode.START | StepMode.RESTART | StepMode.MOVE:
                return StepKind.BUILDKIT
            case StepMode.KEEP_STATE:
                return StepKind.BUILDER
            case _:
                assert_never(self)


def assert_never(value: NoReturn) -> NoReturn:
    """Unreachable when every member is handled; mypy says which one is not (typing's own is 3.11+)."""
    raise AssertionError(f"unhandled value: {value!r}")


@dataclass(frozen=True)
class Step:
    """One thing to do (or, for NOOP, not to do) to one resource."""

    kind: StepKind
    name: str  # context name, builder name, or the file's node name
    action: Action
    reason: str
    changes: tuple[tuple[str, str, str], ...] = ()  # (field, old, new), for people
    mode: StepMode = StepMode.NONE  # the variant apply runs (StepMode says which kind each belongs to)
    settings: NodeSettings | None = None  # the node's desired settings (context, node, buildkit)
    buildx_node: str | None = None
    where: str | None = None  # the context or host to act through (buildkit steps)
    stamp: Stamp | None = None  # node steps: what the node's BuildKit container is to carry

    def __post_init__(self) -> None:
        # Plain words are accepted (plan cases and tests are written in them) and become members.
        object.__setattr__(self, "kind", StepKind(self.kind))
        object.__setattr__(self, "mode", StepMode(self.mode))

    def to_dict(self) -> dict:
        return {
            "kind": self.kind.value,
            "name": self.name,
            "action": self.action.value,
            "symbol": self.action.symbol,
            "reason": self.reason,
            "changes": [{"field": f, "old": o, "new": n} for f, o, n in self.changes],
            **({"mode": self.mode.value} if self.mode is not StepMode.NONE else {}),
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
