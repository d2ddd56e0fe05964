"""The farm file: its pydantic model and `load_config`.

CONTRACT (other modules rely on these names; keep them stable):
- `load_config(path) -> FarmConfig` raises `ConfigError` listing every issue.
- After loading, every file path field is an absolute `Path` resolved against the farm
  file's folder, platforms are normalised (`linux/arm64`), and `{name}` placeholders in
  tags are left as they are (filled at build time).
- `FarmConfig.node_settings()` gives each node's effective settings (builder defaults
  merged with the node's overrides) as plain frozen data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Driver = Literal["docker-container", "remote", "kubernetes"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TLSConfig(_Model):
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


class BuilderConfig(_Model):
    name: str
    driver: Driver = "docker-container"
    driver_opts: dict[str, str] = Field(default_factory=dict)
    buildkitd_flags: str | None = None
    buildkitd_config: Path | dict | None = None
    buildkit_image: str | None = None


class NodeConfig(_Model):
    name: str
    endpoint: str | None = None
    context: str | None = None
    platforms: tuple[str, ...] = ()
    tls: TLSConfig | None = None
    driver_opts: dict[str, str] = Field(default_factory=dict)
    buildkitd_flags: str | None = None
    buildkitd_config: Path | dict | None = None
    nodeselector: dict[str, str] = Field(default_factory=dict)
    replicas: int | None = None


class SecretConfig(_Model):
    id: str
    env: str | None = None
    src: Path | None = None


class TargetConfig(_Model):
    name: str
    context: Path = Path(".")
    dockerfile: Path | None = None
    dockerfiles: dict[str, Path] = Field(default_factory=dict)
    sources: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    variant_tags: bool = False
    args: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    provenance: bool = False
    sbom: bool = False
    secrets: tuple[SecretConfig, ...] = ()
    ssh: tuple[str, ...] = ()
    allow_emulation: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSettings:
    """A node's effective settings, as buildx will be told them."""

    name: str
    context: str  # the Docker context buildx uses (the node's name when farm-owned)
    endpoint: str | None  # None when the node uses a user's context as is
    tls: TLSConfig | None
    owns_context: bool
    platforms: tuple[str, ...]
    driver: str
    driver_opts: tuple[tuple[str, str], ...]  # sorted
    buildkitd_flags: str | None
    buildkitd_config: str | None  # TOML text, or None


class FarmConfig(_Model):
    file: Path
    builder: BuilderConfig
    nodes: tuple[NodeConfig, ...] = Field(default=(), alias="node")
    targets: tuple[TargetConfig, ...] = Field(default=(), alias="target")

    def node_settings(self) -> tuple[NodeSettings, ...]:
        raise NotImplementedError


def load_config(path: str | Path) -> FarmConfig:
    raise NotImplementedError
