"""One table of the farm file as validated: what the cross-field rules read.

A table whose keys had errors is kept partial (the bad keys `dropped`; an array with bad
items keeps its good ones, `kept`), so the rules about the rest still run and one typo
does not hide another problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class Section:
    label: str  # 'node "node2"', 'node[3]', 'builder', 'target "app"'
    raw: Any
    model: Any = None  # the validated model (partial when `dropped`), or None
    valid: bool = True
    dropped: frozenset = frozenset()  # keys with errors, left out of a partial model
    # Arrays that lost only some items: key -> the file's index of each item kept.
    kept: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)

    def has(self, *keys: str) -> bool:
        """True when none of `keys` was dropped (the rules about them can run)."""
        return not self.dropped.intersection(keys)

    def whole(self, *keys: str) -> bool:
        """True when every item of `keys` is in the model (rules about what is missing can run)."""
        return self.has(*keys) and not any(key in self.kept for key in keys)

    def at(self, key: str, index: int) -> str:
        """`label.key[i]`, where i is the item's index in the file, not in the model."""
        kept = self.kept.get(key)
        return f"{self.label}.{key}[{kept[index] if kept else index}]"


# --------------------------------------------------------------------------- the rules
