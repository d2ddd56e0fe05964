"""The desired state: what the farm file asks of Docker, as plain frozen data (made by `load`).

`reconcile` plans and applies from a `Desired` value only: no pydantic object, no file read
past this point. Each node's settings are the builder's defaults merged with the node's
overrides, its buildkitd config is already TOML text, and its TLS files are plain paths.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from buildkit_farm.errors import UsageError


@dataclass(frozen=True)
class TLSFiles:
    """Client certificate files for a node: plain paths, absolute, as the file named them."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def files(self) -> tuple[tuple[str, Path], ...]:
        """(ca|cert|key, path) for each file given, in that order."""
        return tuple((kind, path) for kind, path in (("ca", self.ca), ("cert", self.cert), ("key", self.key)) if path)


@dataclass(frozen=True)
class NodeSettings:
    """A node's effective settings, as buildx will be told them.

    `context` is what `docker buildx create` takes as its positional argument: the node's
    name for a farm-owned context (`owns_context`, created from `endpoint` and `tls`), the
    user's context name, the buildkitd address for the remote driver, and "" for the
    kubernetes driver (buildx takes no endpoint there; the cluster is $KUBECONFIG's).
    """

    name: str
    context: str  # the Docker context buildx uses (the node's name when farm-owned)
    endpoint: str | None  # None when the node uses a user's context as is
    tls: TLSFiles | None
    owns_context: bool
    platforms: tuple[str, ...]
    driver: str
    driver_opts: tuple[tuple[str, str], ...]  # sorted
    buildkitd_flags: str | None
    buildkitd_config: str | None  # TOML text, or None

    @property
    def buildx_endpoint(self) -> str:
        """What buildx is given as the node's endpoint: its context (a BuildKit address for `remote`)."""
        return (self.endpoint or self.context) if self.driver == "remote" else self.context

    @property
    def fingerprint(self) -> str:
        """A digest of the settings a BuildKit container is created with (not its platforms)."""
        data = {
            "driver": self.driver,
            "driver_opts": [list(kv) for kv in self.driver_opts],
            "buildkitd_flags": self.buildkitd_flags or "",
            "buildkitd_config": self.buildkitd_config or "",
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BuilderSettings:
    name: str
    driver: str


@dataclass(frozen=True)
class Desired:
    """The farm file's builder and nodes, ready to plan against what is observed."""

    file: Path
    builder: BuilderSettings
    nodes: tuple[NodeSettings, ...]

    def node(self, name: str) -> NodeSettings:
        """The node called `name`; `UsageError` naming the known ones otherwise."""
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes) or "none"
        raise UsageError(f'no node "{name}" in {self.file}', hint=f"known nodes: {known}")


def pools_of(nodes: Iterable[NodeSettings]) -> dict[str, tuple[str, ...]]:
    """Platform -> its pool: the nodes pinned to it, in file order (the order of preference)."""
    out: dict[str, list[str]] = {}
    for s in nodes:
        for platform in s.platforms:
            out.setdefault(platform, []).append(s.name)
    return {platform: tuple(names) for platform, names in out.items()}
