"""The desired state: what the farm file asks of Docker, as plain frozen data computed once at load.

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
from typing import TYPE_CHECKING, Any

from buildkit_farm.errors import ConfigIssue, UsageError
from buildkit_farm.farmfile.rules import quote

if TYPE_CHECKING:
    from buildkit_farm.farmfile.model import BuilderConfig, NodeConfig


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


def desire(builder: BuilderConfig, nodes: Iterable[NodeConfig], *, file: Path, issues: list[ConfigIssue]) -> Desired:
    """The desired state of a validated file; a buildkitd config that cannot be read is an issue."""
    settings = tuple(_node_settings(builder, node, issues) for node in nodes)
    return Desired(file=file, builder=BuilderSettings(builder.name, builder.driver), nodes=settings)


def _node_settings(builder: BuilderConfig, node: NodeConfig, issues: list[ConfigIssue]) -> NodeSettings:
    driver = builder.driver
    opts = dict(builder.driver_opts)
    opts.update(node.driver_opts)
    if builder.buildkit_image and driver != "remote":
        opts.setdefault("image", builder.buildkit_image)
    if driver == "kubernetes":
        if node.nodeselector:
            opts["nodeselector"] = ",".join(f"{k}={v}" for k, v in sorted(node.nodeselector.items()))
        if node.replicas is not None:
            opts["replicas"] = str(node.replicas)
    tls = TLSFiles(node.tls.ca, node.tls.cert, node.tls.key) if node.tls is not None else None
    if driver == "remote" and tls is not None:
        for kind, path in tls.files():
            opts["cacert" if kind == "ca" else kind] = str(path)
    if driver == "remote":
        context, endpoint, owns = node.endpoint or "", node.endpoint, False
    elif driver == "kubernetes":
        context, endpoint, owns = "", None, False
    elif node.context is not None:
        context, endpoint, owns = node.context, None, False
    else:
        context, endpoint, owns = node.name, node.endpoint, True
    own = node.buildkitd_config is not None
    where = f"node {quote(node.name)}.buildkitd_config" if own else "builder.buildkitd_config"
    text = _buildkitd_text(node.buildkitd_config if own else builder.buildkitd_config, where, issues)
    return NodeSettings(
        name=node.name,
        context=context,
        endpoint=endpoint,
        tls=tls,
        owns_context=owns,
        platforms=node.platforms,
        driver=driver,
        driver_opts=tuple(sorted(opts.items())),
        buildkitd_flags=node.buildkitd_flags if node.buildkitd_flags is not None else builder.buildkitd_flags,
        buildkitd_config=text,
    )


def _buildkitd_text(config: Path | dict[str, Any] | None, where: str, issues: list[ConfigIssue]) -> str | None:
    if config is None:
        return None
    if isinstance(config, dict):
        import tomli_w  # small, but only needed here

        return tomli_w.dumps(config)
    try:
        return config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        issues.append(
            ConfigIssue(where, f"cannot read {config}: {reason}", "paths are relative to the farm file's folder")
        )
        return None
