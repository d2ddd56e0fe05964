"""The farm's own file for a builder, in each runner's Docker config: a cache, never the truth.

`<docker config>/buildkit-farm/<builder>.json` proves that this runner's farm created the
builder and remembers, per node, the container it last saw with what BuildKit reported, so
a converged `farm up` need not ask BuildKit again. What a container was created with is
read from the container itself (`reconcile.stamp`); the record's settings only stand in for
containers made before the farm stamped them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from buildkit_farm.docker import DockerPaths
from buildkit_farm.errors import CorruptState

OWNER_MARK = "managed by buildkit-farm"


@dataclass(frozen=True)
class RecordEntry:
    """What the farm last knew about one node's BuildKit container."""

    container_id: str
    settings: str
    started_at: str | None = None
    version: str | None = None
    platforms: tuple[str, ...] = ()


@dataclass(frozen=True)
class FarmRecord:
    """The farm's own file for a builder: proof of ownership plus per-node bookkeeping."""

    builder: str
    nodes: Mapping[str, RecordEntry] = field(default_factory=lambda: MappingProxyType({}))
    contexts: tuple[str, ...] = ()  # the contexts the farm created for this builder

    def to_json(self) -> str:
        return json.dumps(
            {
                "builder": self.builder,
                "owner": OWNER_MARK,
                "contexts": sorted(self.contexts),
                "nodes": {
                    k: {
                        "container_id": v.container_id,
                        "settings": v.settings,
                        "started_at": v.started_at,
                        "version": v.version,
                        "platforms": list(v.platforms),
                    }
                    for k, v in sorted(self.nodes.items())
                },
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> FarmRecord:
        data = json.loads(text)
        nodes = {
            k: RecordEntry(
                container_id=v["container_id"],
                settings=v["settings"],
                started_at=v.get("started_at"),
                version=v.get("version"),
                platforms=tuple(v.get("platforms") or ()),
            )
            for k, v in (data.get("nodes") or {}).items()
        }
        return cls(builder=data["builder"], nodes=MappingProxyType(nodes), contexts=tuple(data.get("contexts") or ()))


def read_record(paths: DockerPaths, builder: str) -> FarmRecord | None:
    file = paths.record_file(builder)
    try:
        return FarmRecord.from_json(file.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorruptState(
            file=str(file),
            what=f'the farm\'s record of builder "{builder}"',
            detail=why_corrupt(err),
            hint=f"delete it, then `docker buildx rm {builder.lower()}` (without its record the builder is no "
            "longer known as the farm's) and `farm up`",
        ) from None


def why_corrupt(err: Exception) -> str:
    """Why a state file could not be read, in a few words."""
    if isinstance(err, json.JSONDecodeError):
        return f"not JSON: {err.msg} at line {err.lineno}"
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(err, KeyError):
        return f"no {err.args[0]!s} field"
    return "not the JSON that was written there"
