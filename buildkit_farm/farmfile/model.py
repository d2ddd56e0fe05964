"""The farm file's pydantic model: each table checked on its own, at the boundary only.

CONTRACT (other modules rely on these names; keep them stable):
- `load.load_config(path) -> FarmConfig` raises `ConfigError` listing every issue.
- After loading, every file path field is an absolute `Path` resolved against the farm
  file's folder, platforms are normalised (`linux/arm64`), and `{name}` placeholders in
  tags are left as they are (filled at build time).
- A target's `platforms` is always filled: from `dockerfiles`' keys when the file omits it;
  it is empty only for a pure manifest target (made of `sources` only). `dockerfile` is
  filled (`<context>/Dockerfile` by default) unless the target uses `dockerfiles` or is a
  pure manifest target.
- `FarmConfig.node_settings()` gives each node's effective settings (builder defaults
  merged with the node's overrides) as plain frozen data.

The pydantic models check each table on its own; the cross-field rules live in `rules.py`;
`load.load_config` runs both and reports every issue in the file at once. Past loading,
`FarmConfig.desired` is the plain value reconcile plans from.
"""

# No `from __future__ import annotations` here: pydantic would then eval every annotation
# string at start-up, a cost `farm validate` pays on each run.
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from buildkit_farm.errors import UsageError
from buildkit_farm.farmfile import platforms as platform_names
from buildkit_farm.farmfile import reference
from buildkit_farm.farmfile.desired import Desired, NodeSettings, pools_of
from buildkit_farm.farmfile.drivers import DEFAULT_DRIVER
from buildkit_farm.farmfile.paths import resolved
from buildkit_farm.farmfile.words import quote, toml_type

Driver = Literal["docker-container", "remote", "kubernetes"]
RESERVED_BUILDER_NAMES = ("default",)
# fullmatch, ASCII: `$` would accept a trailing newline, `\w` and `\d` non-ASCII letters and digits.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]+", re.ASCII)
_CONTEXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]+", re.ASCII)
_SECRET_ID = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# A Dockerfile stage name (`FROM image AS name`), as BuildKit's parser accepts it (any case).
_STAGE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*", re.ASCII)
# buildx keeps a builder as a file of its name (255 bytes at most) and names containers after
# nodes; a name of 100 000 characters passes every pattern and fails only at `farm up`.
MAX_NAME_CHARS = 128


# --------------------------------------------------------------------------- field checks


def _fail(message: str, hint: str | None = None) -> PydanticCustomError:
    # Values go through the context, never the template, so braces in them stay literal.
    return PydanticCustomError("farm", "{message}", {"message": message, "hint": hint or ""})


def _check_length(value: str, what: str) -> None:
    if len(value) > MAX_NAME_CHARS:
        raise _fail(
            f"{what} {quote(value[:40])}... is {len(value):,} characters, more than {MAX_NAME_CHARS}",
            "use a short name",
        )


def _check_name(value: str) -> str:
    _check_length(value, "the name")
    if not _NAME.fullmatch(value):
        raise _fail(
            f"invalid name {quote(value)}",
            "start with a letter or digit; use only letters, digits, '.', '_' and '-'",
        )
    return value


def _check_node_name(value: str) -> str:
    _check_length(value, "the node name")
    if not _NODE_NAME.fullmatch(value):
        raise _fail(
            f"invalid node name {quote(value)}",
            "the node name is also its Docker context's name: at least 2 characters, "
            "starting with a letter or digit, then letters, digits, '.', '_' or '-'",
        )
    return value


def _check_builder_name(value: str) -> str:
    _check_name(value)
    if value.lower() in RESERVED_BUILDER_NAMES:
        raise _fail(
            f'"{value}" is the name of Docker\'s own builder',
            'pick a name for the farm\'s builder, e.g. name = "ch16"',
        )
    return value


def _check_context_name(value: str) -> str:
    _check_length(value, "the context name")
    if not _CONTEXT_NAME.fullmatch(value):
        raise _fail(f"invalid context name {quote(value)}", "see `docker context ls` for the names you have")
    return value


def _check_stage_name(value: str) -> str:
    if not _STAGE_NAME.fullmatch(value):
        raise _fail(
            f"invalid Dockerfile stage name {quote(value)}",
            'the name after AS in a FROM line: a letter, then letters, digits, _ . or -, e.g. target = "release"',
        )
    return value


def _check_daemon_flags(value: str) -> str:
    # Words for a command line: a NUL cannot be passed at all, other control characters would
    # reach buildkitd's arguments unseen. Line breaks and tabs separate words, as in a shell.
    odd = next((ch for ch in value if not ch.isprintable() and ch not in "\t\n\r"), None)
    if odd is not None:
        raise _fail(
            f"contains the control character {quote(odd)}",
            'write the flags as plain words, e.g. buildkitd_flags = "--debug"',
        )
    return value


def _check_build_platform(value: str) -> str:
    try:
        canonical = platform_names.normalise(value)
    except platform_names.PlatformError as err:
        raise _fail(err.message, err.hint) from None
    if platform_names.is_windows(canonical):
        raise _fail(
            f'"{value}": buildx builds no Windows containers',
            "build Windows images on a Windows host and stitch them into the target with "
            'sources = ["registry/app:windows-amd64"]',
        )
    return canonical


def _check_secret_id(value: str) -> str:
    if not _SECRET_ID.fullmatch(value):
        raise _fail(f"invalid secret id {quote(value)}", "use letters, digits, '.', '_' and '-'")
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise _fail(f"invalid environment variable name {quote(value)}", 'e.g. env = "NPM_TOKEN"')
    return value


def _check_image(value: str) -> str:
    try:
        reference.check_reference(value)
    except reference.BadReference as err:
        raise _fail(err.message, err.hint) from None
    return value


def _check_tag(value: str) -> str:
    try:
        reference.check_tag(value)
    except reference.BadReference as err:
        raise _fail(err.message, err.hint) from None
    return value


def _non_empty_path(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise _fail("a path must not be empty")
    if isinstance(value, str) and "\x00" in value:
        raise _fail("a path must not contain a NUL character")
    return value


def _resolve(value: Path, info: ValidationInfo) -> Path:
    return resolved((info.context or {}).get("base") or os.getcwd(), value)


def _path_or_table(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return _non_empty_path(value)
    raise _fail(
        f"expected a file path (string) or an inline table, got {toml_type(value)}",
        'e.g. buildkitd_config = "buildkitd.toml" or buildkitd_config = { debug = true }',
    )


def _stringify_opts(value: Any) -> Any:
    # buildx takes driver options as strings; TOML users naturally write numbers and booleans.
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, int):
            out[key] = str(item)
        else:
            out[key] = item
    return out


Name = Annotated[str, AfterValidator(_check_name)]
NodeName = Annotated[str, AfterValidator(_check_node_name)]
BuilderName = Annotated[str, AfterValidator(_check_builder_name)]
ContextName = Annotated[str, AfterValidator(_check_context_name)]
BuildPlatform = Annotated[str, AfterValidator(_check_build_platform)]
ImageRef = Annotated[str, AfterValidator(_check_image)]
Tag = Annotated[str, AfterValidator(_check_tag)]
SecretId = Annotated[str, AfterValidator(_check_secret_id)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
StageName = Annotated[str, AfterValidator(_check_stage_name)]
DaemonFlags = Annotated[str, AfterValidator(_check_daemon_flags)]
FilePath = Annotated[Path, BeforeValidator(_non_empty_path), AfterValidator(_resolve)]
DriverOpts = Annotated[
    dict[str, str],
    BeforeValidator(_stringify_opts),
    WithJsonSchema({"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean"]}}),
]
BuildkitdConfig = Annotated[
    Union[FilePath, dict[str, Any]],
    BeforeValidator(_path_or_table),
    Field(description="A buildkitd.toml path (relative to the farm file) or an inline table."),
]


# --------------------------------------------------------------------------- the model


class _Model(BaseModel):
    # defer_build: a model's validator is built when first used, so `farm validate` pays
    # only for the tables it checks (start-up time is a feature of a CLI).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class TLSConfig(_Model):
    """Client certificates: for a `tcp://` Docker engine, or a remote buildkitd."""

    ca: Optional[FilePath] = Field(None, description="CA certificate that signed the server's.")
    cert: Optional[FilePath] = Field(None, description="Client certificate.")
    key: Optional[FilePath] = Field(None, description="Client key (its content is never printed).")


class BuilderConfig(_Model):
    """The buildx builder that joins every node; its settings are each node's defaults."""

    name: BuilderName = Field(description='The buildx builder name; not "default", not a node or context name.')
    driver: Driver = Field(DEFAULT_DRIVER, description="One driver for the whole builder, as in buildx.")
    driver_opts: DriverOpts = Field(default_factory=dict, description="`--driver-opt` key/values for every node.")
    buildkitd_flags: Optional[DaemonFlags] = Field(None, description="`--buildkitd-flags` for every node.")
    buildkitd_config: Optional[BuildkitdConfig] = None
    buildkit_image: Optional[ImageRef] = Field(None, description="BuildKit image (driver option image=).")


class NodeConfig(_Model):
    """One machine (a Docker engine, a buildkitd, or a Kubernetes deployment) of the farm."""

    name: NodeName = Field(description="The buildx node name, and the farm-owned Docker context's name.")
    endpoint: Optional[str] = Field(
        None, description="unix://, ssh://user@host or tcp://host:2376 (remote: the buildkitd address)."
    )
    context: Optional[ContextName] = Field(None, description="An existing Docker context to use as is.")
    platforms: tuple[BuildPlatform, ...] = Field((), description="Platforms pinned to this node.")
    tls: Optional[TLSConfig] = None
    driver_opts: DriverOpts = Field(default_factory=dict, description="Overrides builder.driver_opts per key.")
    buildkitd_flags: Optional[DaemonFlags] = Field(None, description="Replaces builder.buildkitd_flags.")
    buildkitd_config: Optional[BuildkitdConfig] = None
    nodeselector: dict[str, str] = Field(default_factory=dict, description="kubernetes: pod nodeSelector labels.")
    replicas: Optional[int] = Field(None, ge=1, strict=True, description="kubernetes: number of BuildKit pods.")


class SecretConfig(_Model):
    """A build secret by reference: an id and where to read it (never its value)."""

    id: SecretId
    env: Optional[EnvName] = Field(None, description="Read the secret from this environment variable.")
    src: Optional[FilePath] = Field(None, description="Read the secret from this file.")


class TargetConfig(_Model):
    """One image to build (and/or stitch) and push under its tags."""

    name: Name
    context: FilePath = Field(Path("."), description="Build context folder, relative to the farm file.")
    dockerfile: Optional[FilePath] = Field(None, description="Default: <context>/Dockerfile.")
    dockerfiles: dict[BuildPlatform, FilePath] = Field(
        default_factory=dict, description="One Dockerfile per platform (keys are platforms)."
    )
    sources: tuple[ImageRef, ...] = Field((), description="Images built elsewhere to stitch into the list.")
    platforms: tuple[BuildPlatform, ...] = Field((), description="Platforms to build.")
    tags: tuple[Tag, ...] = Field((), description="Where to push; {placeholders} are filled at build time.")
    variant_tags: bool = Field(False, strict=True, description="Also push each variant as repo:os-arch.")
    args: dict[str, str] = Field(default_factory=dict, description="Build arguments.")
    labels: dict[str, str] = Field(default_factory=dict)
    target: Optional[StageName] = Field(None, description="The Dockerfile stage to build.")
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    provenance: bool = Field(False, strict=True, description="Attach a provenance attestation.")
    sbom: bool = Field(False, strict=True, description="Attach an SBOM attestation.")
    secrets: tuple[SecretConfig, ...] = ()
    ssh: tuple[str, ...] = ()
    allow_emulation: tuple[BuildPlatform, ...] = Field(
        (), description="Platforms you accept being built under QEMU on an unpinned node."
    )

    @property
    def is_manifest_only(self) -> bool:
        """A target made only of `sources`: nothing to build, one list to publish."""
        return not self.platforms and bool(self.sources)


class BakeTargetConfig(_Model):
    """`[bake.target.<name>]`: farm-only settings for one bake target, by its resolved name."""

    tags: tuple[Tag, ...] = Field((), description="Tags to push instead of the bake target's.")
    sources: tuple[ImageRef, ...] = Field((), description="Images built elsewhere to stitch into the list.")
    variant_tags: bool = Field(False, strict=True, description="Also push each variant as repo:os-arch.")
    allow_emulation: tuple[BuildPlatform, ...] = Field(
        (), description="Platforms you accept being built under QEMU on an unpinned node."
    )
    provenance: Optional[bool] = Field(None, strict=True, description="Attach a provenance attestation.")
    sbom: Optional[bool] = Field(None, strict=True, description="Attach an SBOM attestation.")
    secrets: tuple[SecretConfig, ...] = ()


class BakeConfig(_Model):
    """`[bake]`: targets taken from bake files, resolved by `docker buildx bake --print`."""

    files: tuple[FilePath, ...] = Field(
        ..., min_length=1, description="Bake files (HCL, JSON or compose), relative to the farm file."
    )
    targets: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        ("default",), min_length=1, description="Bake targets or groups to build (default: the default group)."
    )
    target: dict[str, BakeTargetConfig] = Field(
        default_factory=dict, description="[bake.target.<name>]: farm-only settings per bake target."
    )


class FarmConfig(_Model):
    """The whole farm file, checked."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

    file: SkipJsonSchema[Path] = Field(Path("multiarch.toml"), exclude=True)
    builder: BuilderConfig
    nodes: tuple[NodeConfig, ...] = Field((), alias="node", description="[[node]]: the build machines.")
    targets: tuple[TargetConfig, ...] = Field((), alias="target", description="[[target]]: the images.")
    bake: Optional[BakeConfig] = Field(None, description="[bake]: more targets, from bake files.")

    _desired: Optional[Desired] = PrivateAttr(None)

    @property
    def desired(self) -> Desired:
        """The builder and nodes as plain data (`farmfile.desired`), computed once by `load`."""
        assert self._desired is not None, "a FarmConfig comes from farmfile.load"
        return self._desired

    def node_settings(self) -> tuple[NodeSettings, ...]:
        """Each node's effective settings, in file order."""
        return self.desired.nodes

    def node(self, name: str) -> NodeConfig:
        """The node called `name`; `UsageError` naming the known ones otherwise."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise UsageError(
            f'no node "{name}" in {self.file}', hint=f"known nodes: {', '.join(n.name for n in self.nodes) or 'none'}"
        )

    def target(self, name: str) -> TargetConfig:
        """The target called `name`; `UsageError` naming the known ones otherwise."""
        for target in self.targets:
            if target.name == name:
                return target
        raise UsageError(
            f'no target "{name}" in {self.file}',
            hint=f"known targets: {', '.join(t.name for t in self.targets) or 'none'}",
        )

    def pinned_platforms(self) -> dict[str, str]:
        """Platform -> the name of the first node it is pinned to (its pool's preferred node)."""
        return {platform: nodes[0] for platform, nodes in self.pools().items()}

    def pools(self) -> dict[str, tuple[str, ...]]:
        """Platform -> its pool: the nodes pinned to it, in file order (the order of preference)."""
        return pools_of(self.desired.nodes)

    def summary(self) -> dict[str, Any]:
        """Plain data for `farm validate`: nodes and their platforms, targets and theirs."""
        pinned = self.pinned_platforms()
        return {
            "file": str(self.file),
            "ok": True,
            "builder": {"name": self.builder.name, "driver": self.builder.driver},
            "nodes": [
                {
                    "name": s.name,
                    "where": s.endpoint or (f"context {s.context}" if s.context else "kubernetes"),
                    "platforms": list(s.platforms),
                }
                for s in self.node_settings()
            ],
            "pools": {platform: list(nodes) for platform, nodes in self.pools().items()},
            "targets": [
                {
                    "name": t.name,
                    "platforms": {p: pinned.get(p, "emulated") for p in t.platforms},
                    "sources": list(t.sources),
                    "tags": list(t.tags),
                }
                for t in self.targets
            ],
        }

    def describe(self) -> str:
        """The short human summary `farm validate` prints."""
        data = self.summary()
        lines = [
            f"builder {self.builder.name} ({self.builder.driver}): "
            f"{len(self.nodes)} node(s), {len(self.targets)} target(s)"
        ]
        width = max((len(n["name"]) for n in data["nodes"]), default=0)
        where_width = max((len(n["where"]) for n in data["nodes"]), default=0)
        for node in data["nodes"]:
            pins = ", ".join(node["platforms"]) or "(not pinned: what the node reports)"
            lines.append(f"  node {node['name']:<{width}}  {node['where']:<{where_width}}  -> {pins}")
        if any(len(pool) > 1 for pool in data["pools"].values()):
            # Each platform's pool: its nodes in order of preference; the first healthy one builds it.
            pwidth = max(len(p) for p in data["pools"])
            for platform, pool in data["pools"].items():
                lines.append(f"  pool {platform:<{pwidth}}  {' > '.join(pool)}")
        for target in data["targets"]:
            platforms = ", ".join(
                f"{p} on {n}" if n != "emulated" else f"{p} under QEMU" for p, n in target["platforms"].items()
            )
            parts = [platforms] if platforms else []
            if target["sources"]:
                parts.append(f"+ {len(target['sources'])} source(s)")
            lines.append(f"  target {target['name']}: {'; '.join(parts)} => {', '.join(target['tags'])}")
        return "\n".join(lines)
