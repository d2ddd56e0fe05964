"""The desired state: what the farm file asks of Docker, as plain frozen data (made by `load`).

`reconcile` plans and applies from a `Desired` value only, and `farm build` builds from its
`targets`: no pydantic object, no file read past this point. Each node's settings are the
builder's defaults merged with the node's overrides, its buildkitd config is already TOML
text, and its TLS files are plain paths. Each target is checked by `farmfile.rules` once.
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
class SecretRef:
    """A build secret by reference: its value is read by buildx, never by farm."""

    id: str
    env: str | None = None
    src: str | None = None

    def flag(self) -> str:
        """The buildx `--secret` / bake `secret` value."""
        if self.env:
            return f"id={self.id},env={self.env}"
        return f"id={self.id},src={self.src}"


@dataclass(frozen=True)
class TargetSpec:
    """One target as the file (or a bake file) says it, checked by the rules: what `farm build`
    builds from. Tags may still hold `{name}` placeholders (filled from `--var` at build time)."""

    name: str
    context: Path
    dockerfile: Path | None  # one multi-arch Dockerfile; None with `dockerfiles` or only sources
    dockerfiles: tuple[tuple[str, Path], ...]  # (platform, file), in platform order
    platforms: tuple[str, ...]  # from `dockerfiles` when the file leaves them out
    pools: tuple[tuple[str, tuple[str, ...]], ...]  # (platform, its nodes in preference order; () emulated)
    tags: tuple[str, ...]
    sources: tuple[str, ...] = ()
    variant_tags: bool = False
    args: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    stage: str | None = None
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    provenance: bool = False
    sbom: bool = False
    secrets: tuple[SecretRef, ...] = ()
    ssh: tuple[str, ...] = ()
    allow_emulation: tuple[str, ...] = ()
    origin: str | None = None  # a bake target: which files and resolved name it came from

    @property
    def sources_only(self) -> bool:
        return not self.platforms


@dataclass(frozen=True)
class Desired:
    """The farm file's builder, nodes and targets, ready to plan against what is observed."""

    file: Path
    builder: BuilderSettings
    nodes: tuple[NodeSettings, ...]
    targets: tuple[TargetSpec, ...] = ()

    def pools(self) -> dict[str, tuple[str, ...]]:
        """Platform -> its pool: the nodes pinned to it, in file order."""
        return pools_of(self.nodes)

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
