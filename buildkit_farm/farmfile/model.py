"""The farm file: its pydantic model and `load_config`.

CONTRACT (other modules rely on these names; keep them stable):
- `load_config(path) -> FarmConfig` raises `ConfigError` listing every issue.
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
`load_config` runs both and reports every issue in the file at once.
"""

# No `from __future__ import annotations` here: pydantic would then eval every annotation
# string at start-up, a cost `farm validate` pays on each run.
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from buildkit_farm.errors import ConfigError, ConfigIssue, UsageError
from buildkit_farm.farmfile import platforms as platform_names
from buildkit_farm.farmfile import reference
from buildkit_farm.farmfile.rules import (
    DEFAULT_DOCKERFILE,
    Section,
    allowed_hint,
    check_farm,
    credential_issues,
    key_name,
    quote,
    short,
    syntax_issue,
    table_labels,
    toml_type,
)
from buildkit_farm.farmfile.toml import tomllib

Driver = Literal["docker-container", "remote", "kubernetes"]
RESERVED_BUILDER_NAMES = ("default",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")
_CONTEXT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]+$")
_SECRET_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------- field checks


def _fail(message: str, hint: str | None = None) -> PydanticCustomError:
    # Values go through the context, never the template, so braces in them stay literal.
    return PydanticCustomError("farm", "{message}", {"message": message, "hint": hint or ""})


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise _fail(
            f"invalid name {quote(value)}",
            "start with a letter or digit; use only letters, digits, '.', '_' and '-'",
        )
    return value


def _check_node_name(value: str) -> str:
    if not _NODE_NAME.match(value):
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
    if not _CONTEXT_NAME.match(value):
        raise _fail(f"invalid context name {quote(value)}", "see `docker context ls` for the names you have")
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
    if not _SECRET_ID.match(value):
        raise _fail(f"invalid secret id {quote(value)}", "use letters, digits, '.', '_' and '-'")
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
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
    base = (info.context or {}).get("base") or os.getcwd()
    return Path(os.path.normpath(os.path.join(base, value)))


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
    driver: Driver = Field("docker-container", description="One driver for the whole builder, as in buildx.")
    driver_opts: DriverOpts = Field(default_factory=dict, description="`--driver-opt` key/values for every node.")
    buildkitd_flags: Optional[str] = Field(None, description="`--buildkitd-flags` for every node.")
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
    buildkitd_flags: Optional[str] = Field(None, description="Replaces builder.buildkitd_flags.")
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
    target: Optional[str] = Field(None, description="The Dockerfile stage to build.")
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
    tls: TLSConfig | None
    owns_context: bool
    platforms: tuple[str, ...]
    driver: str
    driver_opts: tuple[tuple[str, str], ...]  # sorted
    buildkitd_flags: str | None
    buildkitd_config: str | None  # TOML text, or None


class FarmConfig(_Model):
    """The whole farm file, checked."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

    file: SkipJsonSchema[Path] = Field(Path("multiarch.toml"), exclude=True)
    builder: BuilderConfig
    nodes: tuple[NodeConfig, ...] = Field((), alias="node", description="[[node]]: the build machines.")
    targets: tuple[TargetConfig, ...] = Field((), alias="target", description="[[target]]: the images.")
    bake: Optional[BakeConfig] = Field(None, description="[bake]: more targets, from bake files.")

    def node_settings(self) -> tuple[NodeSettings, ...]:
        """Each node's effective settings, in file order."""
        return tuple(_node_settings(self.builder, node, self.file) for node in self.nodes)

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
        """Platform -> the name of the node it is pinned to."""
        return {platform: node.name for node in self.nodes for platform in node.platforms}

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
            f"builder {self.builder.name} ({self.builder.driver}): {len(self.nodes)} node(s), {len(self.targets)} target(s)"
        ]
        width = max((len(n["name"]) for n in data["nodes"]), default=0)
        where_width = max((len(n["where"]) for n in data["nodes"]), default=0)
        for node in data["nodes"]:
            pins = ", ".join(node["platforms"]) or "(not pinned: what the node reports)"
            lines.append(f"  node {node['name']:<{width}}  {node['where']:<{where_width}}  -> {pins}")
        for target in data["targets"]:
            platforms = ", ".join(
                f"{p} on {n}" if n != "emulated" else f"{p} under QEMU" for p, n in target["platforms"].items()
            )
            parts = [platforms] if platforms else []
            if target["sources"]:
                parts.append(f"+ {len(target['sources'])} source(s)")
            lines.append(f"  target {target['name']}: {'; '.join(parts)} => {', '.join(target['tags'])}")
        return "\n".join(lines)


def _node_settings(builder: BuilderConfig, node: NodeConfig, file: Path) -> NodeSettings:
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
    if driver == "remote" and node.tls is not None:
        for opt, path in (("cacert", node.tls.ca), ("cert", node.tls.cert), ("key", node.tls.key)):
            if path is not None:
                opts[opt] = str(path)
    if driver == "remote":
        context, endpoint, owns = node.endpoint or "", node.endpoint, False
    elif driver == "kubernetes":
        context, endpoint, owns = "", None, False
    elif node.context is not None:
        context, endpoint, owns = node.context, None, False
    else:
        context, endpoint, owns = node.name, node.endpoint, True
    config = node.buildkitd_config if node.buildkitd_config is not None else builder.buildkitd_config
    where = (
        f"node {quote(node.name)}.buildkitd_config" if node.buildkitd_config is not None else "builder.buildkitd_config"
    )
    return NodeSettings(
        name=node.name,
        context=context,
        endpoint=endpoint,
        tls=node.tls,
        owns_context=owns,
        platforms=node.platforms,
        driver=driver,
        driver_opts=tuple(sorted(opts.items())),
        buildkitd_flags=node.buildkitd_flags if node.buildkitd_flags is not None else builder.buildkitd_flags,
        buildkitd_config=_buildkitd_text(config, file=file, where=where),
    )


def _buildkitd_text(config: Path | dict[str, Any] | None, *, file: Path, where: str) -> str | None:
    if config is None:
        return None
    if isinstance(config, dict):
        import tomli_w  # small, but only needed here

        return tomli_w.dumps(config)
    try:
        return config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:  # it was there at load time; it may not be now
        issue = ConfigIssue(
            where,
            f"cannot read {config}: {getattr(err, 'strerror', None) or err}",
            "paths are relative to the farm file's folder",
        )
        raise ConfigError(file=str(file), issues=[issue]) from None


# --------------------------------------------------------------------------- loading


def load_config(path: str | Path) -> FarmConfig:
    """Read, check and return the farm file; `ConfigError` lists every issue at once."""
    file = Path(path)
    shown = str(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise _error(
            shown, "", "file not found", "create one with `farm init`, or point to it with -f FILE or $FARM_FILE"
        ) from None
    except IsADirectoryError:
        raise _error(
            shown, "", "is a folder, not a farm file", "pass the farm file itself, e.g. -f ./multiarch.toml"
        ) from None
    except OSError as err:
        raise _error(shown, "", f"cannot be read: {err.strerror or err}", None) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _error(shown, "", f"is not UTF-8 text (byte {err.start})", "TOML files are UTF-8") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(file=shown, issues=[syntax_issue(err)]) from None
    except RecursionError:
        raise _error(shown, "", "TOML syntax error: nesting too deep", None) from None
    base = os.path.dirname(os.path.abspath(file))
    return _build(doc, file=Path(os.path.abspath(file)), shown=shown, base=base)


def load_config_text(text: str, *, base: str | Path = ".", name: str = "<text>") -> FarmConfig:
    """Check a farm file given as text (paths resolve against `base`); for tests and tools."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(file=name, issues=[syntax_issue(err)]) from None
    base = os.path.abspath(base)
    return _build(doc, file=Path(base) / name, shown=name, base=base)


def _error(shown: str, path: str, message: str, hint: str | None) -> ConfigError:
    return ConfigError(file=shown, issues=[ConfigIssue(path=path, message=message, hint=hint)])


def _build(doc: dict[str, Any], *, file: Path, shown: str, base: str) -> FarmConfig:
    issues: list[ConfigIssue] = []
    context = {"base": base}

    credentials: list[ConfigIssue] = []
    credential_paths = credential_issues(doc, credentials)

    allowed = ("builder", "node", "target", "bake")
    for key in doc:
        if key not in allowed:
            if key in credential_paths:
                continue
            issues.append(ConfigIssue(key_name(key), "unknown key", allowed_hint(key, allowed)))

    if not doc:
        issues.append(
            ConfigIssue(
                "", "the file is empty", "a farm file needs a [builder] table with a name, and at least one [[node]]"
            )
        )
        raise ConfigError(file=shown, issues=issues)

    builder = Section("builder", doc.get("builder"))
    if "builder" not in doc:
        issues.append(ConfigIssue("builder", "the [builder] table is required", 'add [builder] with name = "my-farm"'))
    elif not isinstance(builder.raw, dict):
        issues.append(
            ConfigIssue("builder", f"expected a table, got {toml_type(builder.raw)}", "write [builder] on its own line")
        )
    else:
        builder.model = _validate(BuilderConfig, builder, context, issues, credential_paths)

    nodes = _array_of_tables(doc, "node", issues)
    if "node" in doc and not nodes and isinstance(doc.get("node"), list):
        issues.append(
            ConfigIssue("node", "at least one [[node]] is required", "add a [[node]] with a name and an endpoint")
        )
    elif "node" not in doc:
        issues.append(
            ConfigIssue(
                "node",
                "at least one [[node]] is required",
                'add [[node]] with name, endpoint = "unix:///var/run/docker.sock" and platforms',
            )
        )
    for node in nodes:
        node.model = _validate(NodeConfig, node, context, issues, credential_paths)

    targets = _array_of_tables(doc, "target", issues)
    for target in targets:
        target.model = _validate(TargetConfig, target, context, issues, credential_paths)

    check_farm(builder, nodes, targets, issues)
    bake = _bake_section(doc, context, issues, credential_paths)
    issues.extend(credentials)
    if issues:
        raise ConfigError(file=shown, issues=_dedupe(issues))
    # Every part is validated already: construct without validating them again.
    return FarmConfig.model_construct(
        file=file,
        builder=builder.model,
        nodes=tuple(n.model for n in nodes),
        targets=tuple(_complete_target(t.model) for t in targets),
        bake=bake,
    )


def _bake_section(
    doc: dict[str, Any], context: dict, issues: list[ConfigIssue], skip: set[str]
) -> Optional[BakeConfig]:
    """The `[bake]` table checked on its own; its targets are resolved later (farmfile.bake)."""
    if "bake" not in doc:
        return None
    section = Section("bake", doc["bake"])
    if not isinstance(section.raw, dict):
        issues.append(
            ConfigIssue("bake", f"expected a table, got {toml_type(section.raw)}", "write [bake] on its own line")
        )
        return None
    model = _validate(BakeConfig, section, context, issues, skip)
    return model if section.valid else None


def validate_section(model: type["_Model"], section: Section, base: str | Path, issues: list[ConfigIssue]) -> Any:
    """Validate one table from outside the farm file (a resolved bake target) like a file's own table."""
    return _validate(model, section, {"base": str(base)}, issues, set())


def complete_target(t: TargetConfig) -> TargetConfig:
    """A validated target with the defaults loading fills in (platforms from dockerfiles, dockerfile)."""
    return _complete_target(t)


def _array_of_tables(doc: dict[str, Any], key: str, issues: list[ConfigIssue]) -> list[Section]:
    raw = doc.get(key)
    if raw is None:
        return []
    if isinstance(raw, dict):
        issues.append(
            ConfigIssue(key, "expected an array of tables", f"write [[{key}]] (double brackets), one per {key}")
        )
        return []
    if not isinstance(raw, list):
        issues.append(
            ConfigIssue(
                key,
                f"expected an array of tables, got {toml_type(raw)}",
                f"write [[{key}]] (double brackets), one per {key}",
            )
        )
        return []
    sections = []
    for label, item in zip(table_labels(key, raw), raw):
        if not isinstance(item, dict):
            issues.append(
                ConfigIssue(
                    label,
                    f"expected a table, got {toml_type(item)}",
                    f"write [[{key}]] (double brackets), one per {key}",
                )
            )
            continue
        sections.append(Section(label, item))
    return sections


def _validate(model: type[_Model], section: Section, context: dict, issues: list[ConfigIssue], skip: set[str]) -> Any:
    """Validate one table; on errors, also validate it without the bad keys.

    The partial model lets the cross-field rules run on the rest of the table (they skip
    rules that involve a dropped key), so one bad tag does not hide a missing Dockerfile.
    """
    try:
        return model.model_validate(section.raw, context=context)
    except ValidationError as err:
        errors = err.errors(include_url=False)
    section.valid = False
    for error in errors:
        issue = _translate(section.label, model, error)
        if issue.path not in skip:
            issues.append(issue)
    bad = {error["loc"][0] for error in errors if error["loc"]}
    if any(not error["loc"] for error in errors) or not all(isinstance(key, str) for key in bad):
        return None
    partial = {key: value for key, value in section.raw.items() if key not in bad}
    # An array that is wrong only in some items keeps the others: a typo in one platform
    # must not hide that another is pinned twice.
    for key, kept in _kept_items(section.raw, errors).items():
        partial[key] = [section.raw[key][index] for index in kept]
        section.kept[key] = kept
        bad.discard(key)
    name = section.raw.get("name")
    if "name" in bad:
        partial["name"] = "placeholder-name"
    try:
        found = model.model_validate(partial, context=context)
    except ValidationError:
        return None
    section.dropped = frozenset(bad)
    if "name" in bad and isinstance(name, str):
        found = found.model_copy(update={"name": name})
    return found


def _kept_items(raw: dict[str, Any], errors: list[dict[str, Any]]) -> dict[str, tuple[int, ...]]:
    """For each array whose errors are all in items, the indices of its good items (if any)."""
    bad_items: dict[str, set[int]] = {}
    whole: set[Any] = set()
    for error in errors:
        loc = error["loc"]
        if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(raw.get(loc[0]), list):
            bad_items.setdefault(loc[0], set()).add(loc[1])
        else:
            whole.add(loc[0])
    kept = {}
    for key, bad in bad_items.items():
        good = tuple(index for index in range(len(raw[key])) if index not in bad)
        if key not in whole and good:
            kept[key] = good
    return kept


def _translate(label: str, model: type[BaseModel], error: dict[str, Any]) -> ConfigIssue:
    """Turn one pydantic error into a ConfigIssue with the file's own key path."""
    loc = [part for part in error["loc"] if part != "[key]" and not _is_union_tag(part)]
    path = label + "".join(_key_part(part) for part in loc)
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "farm":
        return ConfigIssue(path, ctx.get("message", error["msg"]), ctx.get("hint") or None)
    if kind == "missing":
        return ConfigIssue(path, "is required", _required_hint(loc))
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        parent = _model_at(model, loc[:-1])
        allowed = tuple(parent.model_fields) if parent is not None else ()
        if parent is FarmConfig:
            allowed = ("builder", "node", "target")
        return ConfigIssue(path, "unknown key", allowed_hint(key, allowed) if allowed else None)
    if kind == "literal_error":
        return ConfigIssue(path, f"must be one of {ctx.get('expected', '')}, not {short(value)}")
    if kind in ("greater_than_equal", "greater_than"):
        limit = ctx.get("ge", ctx.get("gt"))
        return ConfigIssue(path, f"must be {'>=' if kind == 'greater_than_equal' else '>'} {limit}, not {short(value)}")
    expected = {
        "string_type": "a string",
        "int_type": "an integer",
        "bool_type": "true or false",
        "dict_type": "a table",
        "model_type": "a table",
        "model_attributes_type": "a table",
        "tuple_type": "an array",
        "list_type": "an array",
        "path_type": "a path (string)",
    }.get(kind)
    if expected:
        return ConfigIssue(path, f"expected {expected}, got {toml_type(value)}")
    if kind == "value_error":
        return ConfigIssue(path, str(error["msg"]).removeprefix("Value error, "))
    message = str(error["msg"])
    return ConfigIssue(path, message[:1].lower() + message[1:])


def _is_union_tag(part: Any) -> bool:
    # pydantic names union members in the loc (e.g. 'function-after[...]', 'dict[str,any]').
    return isinstance(part, str) and ("[" in part or part in ("str", "int", "bool", "float"))


def _model_at(model: type[BaseModel], loc: list[Any]) -> type[BaseModel] | None:
    """The pydantic model at a location inside `model` (for the allowed keys of a table)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        annotation = fields[part].annotation
        current = _model_in(annotation)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _required_hint(loc: list[Any]) -> str | None:
    last = loc[-1] if loc else ""
    return {
        "name": "every table needs a name",
        "id": "a secret needs the id the Dockerfile mounts it by (RUN --mount=type=secret,id=...)",
    }.get(str(last))


def _key_part(part: Any) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    return "." + key_name(str(part))


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen, out = set(), []
    for issue in issues:
        marker = (issue.path, issue.message)
        if marker not in seen:
            seen.add(marker)
            out.append(issue)
    return out


def _complete_target(t: TargetConfig) -> TargetConfig:
    update: dict[str, Any] = {}
    if not t.platforms and t.dockerfiles:
        update["platforms"] = tuple(t.dockerfiles)
    if t.dockerfile is None and not t.dockerfiles and (t.platforms or not t.sources):
        update["dockerfile"] = t.context / DEFAULT_DOCKERFILE
    return t.model_copy(update=update) if update else t


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the farm file, for editors (taplo / Even Better TOML)."""
    schema = FarmConfig.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "buildkit-farm farm file (multiarch.toml)"
    schema.setdefault("required", [])
    if "builder" not in schema["required"]:
        schema["required"].append("builder")
    schema["properties"].pop("file", None)
    return _without_null(schema)


def _without_null(node: Any) -> Any:
    """TOML has no null: drop `{"type": "null"}` from optional keys and their null defaults."""
    if isinstance(node, list):
        return [_without_null(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _without_null(value) for key, value in node.items()}
    if "anyOf" in out:
        kept = [item for item in out["anyOf"] if item != {"type": "null"}]
        if len(kept) == 1:
            del out["anyOf"]
            out = {**kept[0], **out}
        else:
            out["anyOf"] = kept
    if "default" in out and out["default"] is None:
        del out["default"]
    return out
