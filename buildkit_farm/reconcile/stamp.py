"""What the farm writes on a node's BuildKit container, so that every runner reads the same truth.

buildx's docker-container driver (0.13 and later) passes `--driver-opt env.NAME=VALUE` into
the BuildKit container's environment, and `docker container inspect` reads it back from
any client. So each node's container carries:

- `BUILDKIT_FARM_SETTINGS`: the fingerprint of the settings it was created with;
- `BUILDKIT_FARM_NODE`: the farm file's builder and node (`builder/node`);
- `BUILDKIT_FARM_VERSION`: the farm version that applied them;
- `BUILDKIT_FARM_APPLIED`: when they were applied (UTC, ISO 8601);
- `BUILDKIT_FARM_SUPERSEDED`: the fingerprints this node ran before, newest first, each
  with when it was applied (`fp@time fp@time`): a runner whose file is among them is on an
  older file, and does not change the node back.

The per-runner record file stays a cache; this is what decides. The `remote` and
`kubernetes` drivers get no stamp: the farm cannot see their settings, only what buildx
reports (status, BuildKit version, platforms).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PREFIX = "BUILDKIT_FARM_"
SETTINGS, NODE, VERSION, APPLIED, SUPERSEDED = (
    f"{PREFIX}{k}" for k in ("SETTINGS", "NODE", "VERSION", "APPLIED", "SUPERSEDED")
)
NOW = "now"  # the planner's placeholder for the time apply writes
KEEP = 5  # superseded settings kept on a node


@dataclass(frozen=True)
class Stamp:
    """The farm's facts about one BuildKit container, as written on it."""

    settings: str  # fingerprint
    node: str = ""  # builder/node of the farm file that applied it
    version: str = ""  # farm version
    applied: str = ""  # UTC ISO time, or NOW before apply fills it in
    superseded: tuple[tuple[str, str], ...] = ()  # (fingerprint, applied), newest first

    def to_env(self, now: str | None = None) -> tuple[tuple[str, str], ...]:
        """The (NAME, VALUE) pairs for the container's environment."""
        applied = (now or utc_now()) if self.applied == NOW else self.applied
        pairs = [(SETTINGS, self.settings), (NODE, self.node), (VERSION, self.version), (APPLIED, applied)]
        if self.superseded:
            pairs.append((SUPERSEDED, " ".join(f"{fp}@{at}" for fp, at in self.superseded)))
        return tuple(pairs)

    def driver_opts(self, now: str | None = None) -> tuple[tuple[str, str], ...]:
        return tuple((f"env.{k}", v) for k, v in self.to_env(now))

    def newer_than(self, fingerprint: str) -> str | None:
        """When this node replaced `fingerprint` (it ran it before): None when it never did."""
        return next((at for fp, at in self.superseded if fp == fingerprint), None)

    def successor(self, settings: str, node: str, version: str) -> Stamp:
        """The stamp for new settings replacing these on the node (applied: now)."""
        older = ((self.settings, self.applied), *self.superseded)
        kept = tuple((fp, at) for fp, at in older if fp != settings)[:KEEP]
        return Stamp(settings=settings, node=node, version=version, applied=NOW, superseded=kept)


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def from_env(env: Iterable[str]) -> Stamp | None:
    """A stamp from a container's `Config.Env` (`NAME=VALUE` strings); None: the farm did not make it."""
    values = dict(e.split("=", 1) for e in env if e.startswith(PREFIX) and "=" in e)
    return _from_values(values)


def from_driver_opts(opts: Iterable[tuple[str, str]]) -> Stamp | None:
    """A stamp from a buildx node's stored driver options."""
    return _from_values({k[len("env.") :]: v for k, v in opts if k.startswith(f"env.{PREFIX}")})


def without_stamp(opts: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """A node's driver options less the farm's own environment."""
    return tuple((k, v) for k, v in opts if not k.startswith(f"env.{PREFIX}"))


def _from_values(values: Mapping[str, str]) -> Stamp | None:
    if not values.get(SETTINGS):
        return None
    superseded = []
    for item in (values.get(SUPERSEDED) or "").split():
        fp, _, at = item.partition("@")
        superseded.append((fp, at))
    return Stamp(
        settings=values[SETTINGS],
        node=values.get(NODE, ""),
        version=values.get(VERSION, ""),
        applied=values.get(APPLIED, ""),
        superseded=tuple(superseded),
    )
