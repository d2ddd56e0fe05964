"""`farm build`: check everything first, build by digest across the farm, publish, verify.

The flow for each target, in one direction:

    select_targets → prepare_target (pure: inputs, tags, secrets, options)
      → schedule (pure: every platform on a pinned node that is up, or allowed emulation)
      → invocations (pure: the exact `docker buildx build` commands)
      → run_invocation (buildx via python-on-whales, push by digest, live progress)
      → check_pushed (every platform is in what was pushed, read by digest)
      → verify_run (optional: each variant runs on a node of its platform, by digest)
      → publish (imagetools create points the tags at one list; only now do tags move)

Everything before `run_invocation` is pure and unit-tested on plain data; only the
functions marked "talks to Docker" import python_on_whales.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from buildkit_farm.errors import BuildError, FarmError, UsageError
from buildkit_farm.farmfile import reference

PROGRESS_MODES = ("auto", "plain", "tty")
# The tag buildx's multi-node merge writes to when we push by digest (see docs/build.md):
# buildx always pushes the merged list under the export name, so the name gets a tag the
# farm owns instead of the user's `latest`.
STAGING_TAG = "buildkit-farm-staging"

# ---------------------------------------------------------------------------------------
# Plain data
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretSpec:
    """A build secret by reference: its value is read by buildx, never by us."""

    id: str
    env: str | None = None
    src: str | None = None

    def flag(self) -> str:
        if self.env:
            return f"id={self.id},env={self.env}"
        return f"id={self.id},src={self.src}"


@dataclass(frozen=True)
class BuildOptions:
    """Command-line overrides; None / empty means "as the farm file says"."""

    vars: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    secrets: tuple[str, ...] = ()
    ssh: tuple[str, ...] = ()
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    provenance: bool | None = None
    sbom: bool | None = None
    progress: str = "auto"
    verify_run: bool = False
    verify_cmd: str | None = None


@dataclass(frozen=True)
class NodeView:
    """What scheduling needs to know about one node (config + observation)."""

    name: str
    context: str
    up: bool
    pinned: tuple[str, ...]  # platforms the farm file pins to it, in order
    supported: tuple[str, ...] = ()  # platforms its BuildKit reports (native + emulated)
    buildkit_version: str | None = None
    status: str = "running"


@dataclass(frozen=True)
class Assignment:
    """Which node builds one platform, and whether it has to emulate it."""

    platform: str
    node: str
    emulated: bool


@dataclass(frozen=True)
class Invocation:
    """One `docker buildx build`: the python-on-whales arguments plus what it builds."""

    platforms: tuple[str, ...]
    dockerfile: Path
    kwargs: Mapping[str, object]  # for python_on_whales docker.buildx.build
    label: str  # how its log lines and errors name it, e.g. "linux/arm64" or "all"


@dataclass(frozen=True)
class PreparedTarget:
    """A target with every input checked and every option resolved (pure)."""

    name: str
    context: Path
    tags: tuple[str, ...]
    repo: str | None  # where variants are pushed by digest; None for sources-only
    platforms: tuple[str, ...]
    dockerfiles: Mapping[str, Path]  # platform -> file; empty for a multi-arch Dockerfile
    dockerfile: Path | None
    sources: tuple[str, ...]
    variant_tags: bool
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    stage: str | None
    no_cache: bool
    pull: bool
    secrets: tuple[SecretSpec, ...]
    ssh: tuple[str, ...]
    cache_from: tuple[str, ...]
    cache_to: tuple[str, ...]
    provenance: bool
    sbom: bool
    allow_emulation: tuple[str, ...]

    @property
    def sources_only(self) -> bool:
        return not self.platforms


@dataclass
class PlatformReport:
    platform: str
    node: str
    emulated: bool
    buildkit_version: str | None
    duration_s: float | None = None
    digest: str | None = None


@dataclass
class VerifyReport:
    platform: str
    node: str
    emulated: bool
    command: str | None  # None: the image's default command
    exit_code: int
    output: str


@dataclass
class TargetReport:
    target: str
    tags: list[str]
    digest: str | None = None
    repo: str | None = None
    platforms: list[PlatformReport] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    variant_tags: list[str] = field(default_factory=list)
    verify: list[VerifyReport] = field(default_factory=list)
    duration_s: float | None = None
    ok: bool = True
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# Input checks (pure)
# ---------------------------------------------------------------------------------------


def split_tag(ref: str) -> tuple[str, str]:
    """`host:5000/app:1.0` -> (`host:5000/app`, `1.0`); the tag defaults to `latest`."""
    repo = reference.repository(ref)
    rest = ref[len(repo) :].split("@", 1)[0]
    return repo, rest[1:] if rest.startswith(":") else "latest"


def check_tag(tag: str, *, target: str) -> str:
    """Return the tag if Docker would accept it as a tag to push, else raise UsageError."""
    try:
        reference.check_reference(tag, allow_digest=False)
    except reference.BadReference as err:
        raise UsageError(
            f'target "{target}": {err.message}',
            hint=err.hint or "use REGISTRY/REPOSITORY[:TAG], lower-case repository, e.g. 127.0.0.1:5000/app:1.0",
        ) from None
    return tag


def fill_tags(
    tags: Sequence[str], *, target: str, variables: Mapping[str, str], env: Mapping[str, str]
) -> tuple[str, ...]:
    """Fill `{name}` placeholders from --var, then the environment (NAME or name)."""
    filled = []
    for tag in tags:
        missing: list[str] = []

        def value(match: re.Match) -> str:
            name = match.group(1)
            for source in (variables.get(name), env.get(name), env.get(name.upper())):
                if source:
                    return source
            missing.append(name)
            return match.group(0)

        result = reference.PLACEHOLDER.sub(value, tag)
        if missing:
            names = ", ".join(f"{{{m}}}" for m in missing)
            example = " ".join(f"--var {m}=VALUE" for m in missing)
            raise UsageError(
                f'target "{target}": tag "{tag}" has unfilled {names}',
                hint=f"pass {example}, or set {', '.join(m.upper() for m in missing)} in the environment",
            )
        if "{" in result or "}" in result:
            raise UsageError(
                f'target "{target}": tag "{tag}" has a malformed placeholder',
                hint="placeholders look like {name}: letters, digits and _",
            )
        filled.append(check_tag(result, target=target))
    return tuple(dict.fromkeys(filled))


def parse_pairs(items: Iterable[str], *, flag: str) -> dict[str, str]:
    """`["K=V", ...]` from --build-arg/--label/--var into a dict; bad items raise UsageError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f'{flag} "{item}" is not KEY=VALUE', hint=f"e.g. {flag} version=1.0")
        out[key] = value
    return out


def parse_secret(spec: str) -> SecretSpec:
    """`id=npm,env=NPM_TOKEN` or `id=key,src=./key.txt` (as `docker buildx build --secret`)."""
    fields = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f'--secret "{_redact_secret_spec(spec)}" is not id=ID,env=VAR or id=ID,src=FILE')
        fields[key.strip()] = value.strip()
    unknown = set(fields) - {"id", "env", "src", "type"}
    if unknown or not fields.get("id") or ("env" in fields) == ("src" in fields):
        raise UsageError(
            f'--secret "{_redact_secret_spec(spec)}" must have an id and exactly one of env= or src=',
            hint="values are never passed on the command line: --secret id=npm,env=NPM_TOKEN",
        )
    return SecretSpec(id=fields["id"], env=fields.get("env"), src=fields.get("src"))


def _redact_secret_spec(spec: str) -> str:
    # A mistyped spec might hold a value; show only the keys.
    return ",".join(part.split("=", 1)[0] + ("=…" if "=" in part else "") for part in spec.split(","))


def check_secrets(secrets: Sequence[SecretSpec], *, target: str, env: Mapping[str, str]) -> None:
    """Every env secret must be set and every file secret must exist, before anything runs."""
    for secret in secrets:
        if secret.env is not None and not env.get(secret.env):
            raise UsageError(
                f'target "{target}": secret "{secret.id}" reads ${secret.env}, which is not set',
                hint=f"export {secret.env}=… before `farm build` (its value is never stored or shown)",
            )
        if secret.src is not None and not Path(secret.src).is_file():
            raise UsageError(
                f'target "{target}": secret "{secret.id}" file {secret.src} does not exist',
                hint="give src= an existing file (its content is never stored or shown)",
            )


def select_targets(config, names: Sequence[str]) -> list:
    """The named targets (all by default) in file order; an unknown name raises UsageError."""
    targets = list(config.targets)
    known = [t.name for t in targets]
    if not targets:
        raise UsageError(f"{config.file}: no [[target]] to build", hint="add a [[target]] table to the farm file")
    if not names:
        return targets
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"{config.file}: unknown target {', '.join(repr(n) for n in unknown)}",
            hint=f"targets in the file: {', '.join(known)}",
        )
    return [t for t in targets if t.name in names]


def prepare_target(target, options: BuildOptions, *, env: Mapping[str, str]) -> PreparedTarget:
    """Resolve the file's values and CLI overrides, and check every input (pure, no Docker)."""
    name = target.name
    dockerfiles = dict(target.dockerfiles)
    platforms = tuple(dict.fromkeys(tuple(target.platforms) or tuple(dockerfiles)))
    sources = tuple(target.sources)
    if dockerfiles and target.dockerfile is not None:
        raise UsageError(f'target "{name}": set either dockerfile or dockerfiles, not both')
    extra = [p for p in dockerfiles if p not in platforms]
    lacking = [p for p in platforms if dockerfiles and p not in dockerfiles]
    if extra or lacking:
        raise UsageError(
            f'target "{name}": dockerfiles and platforms disagree'
            + (f"; no platform for {', '.join(extra)}" if extra else "")
            + (f"; no Dockerfile for {', '.join(lacking)}" if lacking else ""),
            hint="list the same platforms in both, or leave platforms out",
        )
    if not platforms and not sources:
        raise UsageError(
            f'target "{name}": nothing to build',
            hint='give it platforms = ["linux/amd64", …] or sources = ["registry/app:tag", …]',
        )

    tags = fill_tags(options.tags or target.tags, target=name, variables=options.vars, env=env)
    if not tags:
        raise UsageError(f'target "{name}": no tags to push', hint='add tags = ["registry/app:tag"] or pass --tag')

    context = Path(target.context)
    dockerfile: Path | None = None
    if platforms:
        if not context.is_dir():
            raise UsageError(f'target "{name}": context directory {context} does not exist')
        if dockerfiles:
            for platform, path in dockerfiles.items():
                if not Path(path).is_file():
                    raise UsageError(f'target "{name}": Dockerfile for {platform} ({path}) does not exist')
        else:
            dockerfile = Path(target.dockerfile) if target.dockerfile else context / "Dockerfile"
            if not dockerfile.is_file():
                raise UsageError(
                    f'target "{name}": Dockerfile {dockerfile} does not exist',
                    hint='set dockerfile = "…" in the target, relative to the farm file',
                )

    secrets = [SecretSpec(id=s.id, env=s.env, src=str(s.src) if s.src else None) for s in target.secrets]
    for spec in options.secrets:
        parsed = parse_secret(spec)
        secrets = [s for s in secrets if s.id != parsed.id] + [parsed]
    check_secrets(secrets, target=name, env=env)

    ssh = tuple(options.ssh or target.ssh)
    if len(ssh) > 1:
        raise UsageError(
            f'target "{name}": only one ssh spec is supported, got {len(ssh)}', hint='e.g. ssh = ["default"]'
        )
    cache_to = tuple(options.cache_to or target.cache_to)
    if len(cache_to) > 1:
        raise UsageError(f'target "{name}": only one cache_to is supported, got {len(cache_to)}')

    return PreparedTarget(
        name=name,
        context=context,
        tags=tags,
        repo=split_tag(tags[0])[0] if platforms else None,
        platforms=platforms,
        dockerfiles=dockerfiles,
        dockerfile=dockerfile,
        sources=sources,
        variant_tags=target.variant_tags,
        build_args={**target.args, **options.build_args},
        labels={**target.labels, **options.labels},
        stage=options.target or target.target,
        no_cache=options.no_cache,
        pull=options.pull,
        secrets=tuple(secrets),
        ssh=ssh,
        cache_from=tuple(options.cache_from or target.cache_from),
        cache_to=cache_to,
        provenance=target.provenance if options.provenance is None else options.provenance,
        sbom=target.sbom if options.sbom is None else options.sbom,
        allow_emulation=tuple(target.allow_emulation),
    )


# ---------------------------------------------------------------------------------------
# Scheduling (pure)
# ---------------------------------------------------------------------------------------


def schedule(
    platforms: Sequence[str], nodes: Sequence[NodeView], *, target: str, allow_emulation: Sequence[str] = ()
) -> tuple[Assignment, ...]:
    """Pin every platform to a node, strictly.

    A platform goes to the first node that pins it, as buildx sends it (build/driver.go:
    the first node whose pinned platforms match); that node must be up, else the build
    fails (exit 1) naming it. A platform no node pins is refused (exit 2) unless the target
    allows emulating it; then it goes where buildx sends it: the first node whose BuildKit
    reports the platform, else the first node.
    """
    assignments = []
    for platform in platforms:
        pinned = [n for n in nodes if platform in n.pinned]
        if pinned and pinned[0].up:
            assignments.append(Assignment(platform, pinned[0].name, emulated=False))
            continue
        if pinned:
            raise BuildError(
                f'target "{target}": {platform} is pinned to node "{pinned[0].name}", which is {pinned[0].status}',
                hint="start the node's engine and run `farm up`, or drop the platform from the target",
            )
        if platform not in allow_emulation:
            raise UsageError(
                f'target "{target}": no node is pinned to {platform}; buildx would emulate it on '
                f'"{_emulating_node(platform, nodes)}"',
                hint=f'pin {platform} to a node in the farm file, or add allow_emulation = ["{platform}"] to the target',
            )
        assignments.append(Assignment(platform, _emulating_node(platform, nodes), emulated=True))
    return tuple(assignments)


def _emulating_node(platform: str, nodes: Sequence[NodeView]) -> str:
    # buildx's own rule (build/driver.go): the first node whose platforms match, else node 0.
    live = [n for n in nodes if n.up] or list(nodes)
    for node in live:
        if platform in node.supported:
            return node.name
    return live[0].name if live else "(no node)"


# ---------------------------------------------------------------------------------------
# Commands (pure)
# ---------------------------------------------------------------------------------------


def _csv_dict(spec: str) -> dict[str, str]:
    # "type=registry,ref=x" -> dict; a bare reference means a registry cache.
    if "=" not in spec:
        return {"type": "registry", "ref": spec}
    return dict(part.split("=", 1) for part in spec.split(",") if part)


def platform_slug(platform: str) -> str:
    """`linux/arm/v7` -> `linux-arm-v7`, the book's per-variant tag."""
    return platform.replace("/", "-")


def invocations(
    prepared: PreparedTarget,
    *,
    builder: str,
    metadata_dir: Path,
    progress: str,
    assignments: Sequence[Assignment] = (),
) -> tuple[Invocation, ...]:
    """The `docker buildx build` calls for a target.

    One for every platform pinned to a node; one more per `emulated` platform; or one per
    platform when the target has per-platform Dockerfiles. Why emulated platforms get their
    own build: when any platform of a build has no pinned node, buildx (0.13,
    build/driver.go) re-matches *every* platform against the platforms each BuildKit
    detects, in node order, so a node that emulates arm64 would take arm64 away from the
    node it is pinned to. A build holding only pinned platforms always gets the pinned map.

    The export name: a build on one node pushes by digest only, and BuildKit refuses a
    tagged name there; a build on several nodes ends with buildx's client-side merge,
    which pushes the list under the name, so it gets the farm's staging tag.
    """
    node_of = {a.platform: a.node for a in assignments}
    emulated = [a.platform for a in assignments if a.emulated]
    if prepared.sources_only:
        return ()
    common: dict[str, object] = {
        "context_path": str(prepared.context),
        "builder": builder,
        "build_args": dict(prepared.build_args),
        "labels": dict(prepared.labels),
        "target": prepared.stage,
        "cache": not prepared.no_cache,
        "pull": prepared.pull,
        "secrets": [s.flag() for s in prepared.secrets],
        "ssh": prepared.ssh[0] if prepared.ssh else None,
        "cache_from": [_csv_dict(c) for c in prepared.cache_from] or None,
        "cache_to": _csv_dict(prepared.cache_to[0]) if prepared.cache_to else None,
        "provenance": prepared.provenance,
        "sbom": prepared.sbom,
        "progress": "tty" if progress == "tty" else "plain" if progress == "plain" else "auto",
    }
    out = []
    if prepared.dockerfiles:
        groups = [(p, prepared.dockerfiles[p], (p,)) for p in prepared.platforms]
    else:
        pinned = tuple(p for p in prepared.platforms if p not in emulated)
        groups = [(",".join(pinned), prepared.dockerfile, pinned)] if pinned else []
        groups += [(p, prepared.dockerfile, (p,)) for p in prepared.platforms if p in emulated]
    for label, dockerfile, platforms in groups:
        kwargs = dict(common)
        nodes = {node_of.get(p, p) for p in platforms}
        kwargs.update(
            file=str(dockerfile),
            platforms=list(platforms),
            output={
                "type": "image",
                "name": f"{prepared.repo}:{STAGING_TAG}" if len(nodes) > 1 else prepared.repo,
                "push-by-digest": "true",
                "name-canonical": "true",
                "push": "true",
            },
            metadata_file=str(metadata_dir / f"{prepared.name}-{len(out)}.json"),
        )
        out.append(Invocation(platforms=tuple(platforms), dockerfile=Path(dockerfile), kwargs=kwargs, label=label))
    return tuple(out)


def render_command(kwargs: Mapping[str, object], *, docker_config: str | None = None) -> list[str]:
    """The argv python-on-whales runs for `docker.buildx.build(**kwargs)`, in its order.

    Kept equal to python-on-whales' own (a unit test compares them), so `--dry-run` shows
    exactly what runs.
    """
    cmd = _docker(docker_config) + ["buildx", "build"]
    progress = kwargs.get("progress", "auto")
    if progress != "auto":
        cmd += ["--progress", str(progress)]
    for key, value in dict(kwargs.get("build_args") or {}).items():
        cmd += ["--build-arg", f"{key}={value}"]
    if kwargs.get("builder"):
        cmd += ["--builder", str(kwargs["builder"])]
    for key, value in dict(kwargs.get("labels") or {}).items():
        cmd += ["--label", f"{key}={value}"]
    if kwargs.get("ssh"):
        cmd += ["--ssh", str(kwargs["ssh"])]
    if isinstance(kwargs.get("provenance"), bool):
        cmd.append(f"--provenance={str(kwargs['provenance']).lower()}")
    if kwargs.get("pull"):
        cmd.append("--pull")
    if isinstance(kwargs.get("sbom"), bool):
        cmd.append(f"--sbom={str(kwargs['sbom']).lower()}")
    if kwargs.get("metadata_file"):
        cmd += ["--metadata-file", str(kwargs["metadata_file"])]
    if kwargs.get("file"):
        cmd += ["--file", str(kwargs["file"])]
    if kwargs.get("target"):
        cmd += ["--target", str(kwargs["target"])]
    for item in kwargs.get("cache_from") or []:
        cmd += ["--cache-from", _csv(item)]
    if kwargs.get("cache_to"):
        cmd += ["--cache-to", _csv(kwargs["cache_to"])]
    for secret in kwargs.get("secrets") or []:
        cmd += ["--secret", str(secret)]
    if kwargs.get("output"):
        cmd += ["--output", _csv(kwargs["output"])]
    if kwargs.get("platforms"):
        cmd += ["--platform", ",".join(kwargs["platforms"])]
    if kwargs.get("cache") is False:
        cmd.append("--no-cache")
    cmd.append(str(kwargs["context_path"]))
    return cmd


def _csv(mapping) -> str:
    return ",".join(f"{k}={v}" for k, v in dict(mapping).items())


def _docker(docker_config: str | None) -> list[str]:
    """`docker [--config DIR]`, the start of every command --dry-run shows."""
    return ["docker", *(["--config", docker_config] if docker_config else [])]


def _imagetools(verb: str, *, builder: str, docker_config: str | None) -> list[str]:
    return _docker(docker_config) + ["buildx", "imagetools", verb, "--builder", builder]


def publish_command(
    tags: Sequence[str], sources: Sequence[str], *, builder: str, docker_config: str | None = None
) -> list[str]:
    """The `imagetools create` that points the tags at one list (shown by --dry-run)."""
    cmd = _imagetools("create", builder=builder, docker_config=docker_config)
    for tag in tags:
        cmd += ["--tag", tag]
    return cmd + list(sources)


def inspect_command(ref: str, *, builder: str, docker_config: str | None = None) -> list[str]:
    """The registry read that checks a pushed list (shown by --dry-run)."""
    return _imagetools("inspect", builder=builder, docker_config=docker_config) + ["--format", "{{json .}}", ref]


def redact(argv: Sequence[str], secrets: Sequence[SecretSpec] = ()) -> str:
    """Shell-quoted argv with every --secret reduced to its id (names of env vars and files
    are not secret, but a user's mistake might put a value there)."""
    out = []
    hide_next = False
    for arg in argv:
        if hide_next:
            parts = [part.partition("=") for part in arg.split(",")]
            out.append(",".join(f"{k}={v}" if k in ("id", "type") else f"{k}=REDACTED" for k, _, v in parts))
            hide_next = False
            continue
        hide_next = arg == "--secret"
        out.append(arg)
    return shlex.join(out)


def dry_run_lines(
    prepared: PreparedTarget,
    plan: Sequence[Invocation],
    *,
    builder: str,
    docker_config: str | None,
    verify: Sequence[tuple[str, str]] = (),
    verify_cmd: str | None = None,
) -> list[str]:
    """The docker commands `farm build` would run for a target, in order, secrets redacted.

    The registry reads and writes after the build go through `buildkit_farm.registry.images`,
    which runs them as shown (plus reading every source before `create`).
    """
    opts = {"builder": builder, "docker_config": docker_config}
    lines = [redact(render_command(inv.kwargs, docker_config=docker_config), prepared.secrets) for inv in plan]
    digests = [f"{prepared.repo}@<digest of {inv.label}>" for inv in plan]
    lines += [shlex.join(inspect_command(ref, **opts)) for ref in list(prepared.sources) + digests]
    for platform, context in verify:  # (platform, the context of the node that built it)
        variant = f"{prepared.repo}@<digest of {platform}>"
        docker = _docker(docker_config) + ["--context", context]
        lines.append(shlex.join([*docker, "pull", "--quiet", "--platform", platform, variant]))
        command = shlex.split(verify_cmd) if verify_cmd else []
        lines.append(shlex.join([*docker, "run", "--rm", "--platform", platform, "--pull", "never", variant, *command]))
    if prepared.variant_tags:
        for p in prepared.platforms:
            variant = f"{prepared.repo}@<digest of {p}>"
            lines.append(shlex.join(publish_command([f"{prepared.repo}:{platform_slug(p)}"], [variant], **opts)))
    lines.append(shlex.join(publish_command(prepared.tags, digests + list(prepared.sources), **opts)))
    lines += [shlex.join(inspect_command(tag, **opts)) for tag in prepared.tags]
    return lines


# ---------------------------------------------------------------------------------------
# Progress: live lines in, per-platform timing and the failing step out (pure)
# ---------------------------------------------------------------------------------------

_VERTEX = re.compile(r"^#(\d+) \[(?:(?P<platform>[a-z0-9]+/[a-z0-9]+(?:/[a-z0-9]+)?) )?[^\]]*\]")
_ERROR_VERTEX = re.compile(r"^#(\d+) ERROR: (.*)")
_SUMMARY_STEP = re.compile(r"^ > \[(?:(?P<platform>[a-z0-9]+/[a-z0-9]+(?:/[a-z0-9]+)?) )?[^\]]*\].*:$")


class ProgressTracker:
    """Follows buildx's plain progress: which platform each step is for, when each
    platform's last step moved, and which step failed with its last lines."""

    def __init__(self, platforms: Sequence[str], *, start: float) -> None:
        self.platforms = tuple(platforms)
        self.start = start
        self.vertex_platform: dict[str, str | None] = {}
        self.last_seen: dict[str, float] = {}
        self.tail: deque[str] = deque(maxlen=400)
        self.failed_vertex: str | None = None
        self.error_lines: list[str] = []

    def feed(self, line: str, now: float) -> None:
        line = line.rstrip("\n")
        self.tail.append(line)
        match = _VERTEX.match(line)
        if match:
            platform = match.group("platform")
            if platform is None and len(self.platforms) == 1 and not line.startswith(f"#{match.group(1)} [internal]"):
                platform = self.platforms[0]
            self.vertex_platform.setdefault(match.group(1), platform)
        number = line[1:].split(" ", 1)[0] if line.startswith("#") else None
        platform = self.vertex_platform.get(number) if number else None
        if platform:
            self.last_seen[platform] = now
        error = _ERROR_VERTEX.match(line)
        if error and self.failed_vertex is None:
            self.failed_vertex = error.group(1)
        if line.startswith("ERROR:") or line.startswith("error:"):
            self.error_lines.append(line)

    def durations(self, end: float) -> dict[str, float]:
        """Seconds from start to each platform's last step (the build's end if unknown)."""
        return {p: round(self.last_seen.get(p, end) - self.start, 2) for p in self.platforms}

    def failed_platform(self) -> str | None:
        if self.failed_vertex is not None:
            platform = self.vertex_platform.get(self.failed_vertex)
            if platform:
                return platform
        for line in self.tail:
            match = _SUMMARY_STEP.match(line)
            if match and match.group("platform"):
                return match.group("platform")
        return self.platforms[0] if len(self.platforms) == 1 else None

    def failing_lines(self, limit: int = 12) -> list[str]:
        """The failed step's last log lines (buildx's own summary block when present)."""
        lines = list(self.tail)
        # buildx prints "------\n > [platform n/m] STEP:\n<last lines>\n------" on failure.
        for i, line in enumerate(lines):
            if _SUMMARY_STEP.match(line):
                block = []
                for later in lines[i : i + 1 + limit * 2]:
                    if later.startswith("------") and block:
                        break
                    block.append(later)
                return block[: limit + 1] + [l for l in self.error_lines[-1:]]
        if self.failed_vertex is not None:
            mine = [l for l in lines if l.startswith(f"#{self.failed_vertex} ")]
            return mine[-limit:] + self.error_lines[-1:]
        return (self.error_lines or lines)[-limit:]


def digest_from_metadata(path: Path) -> str:
    """The pushed digest buildx wrote into --metadata-file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise BuildError(f"buildx wrote no readable metadata file {path}: {err}") from None
    digest = data.get("containerimage.digest")
    if not digest:
        raise BuildError(
            f"buildx metadata file {path} has no containerimage.digest",
            hint="is the BuildKit on the nodes recent enough?",
        )
    return digest


# ---------------------------------------------------------------------------------------
# Running (talks to Docker)
# ---------------------------------------------------------------------------------------

Echo = Callable[[str], None]


def _stderr_echo(line: str) -> None:
    sys.stderr.write(line if line.endswith("\n") else line + "\n")
    sys.stderr.flush()


def check_registries(tags: Sequence[str], *, timeout: float = 3.0) -> None:
    """Fail before building when a tag's registry does not even accept a connection."""
    import socket

    seen = set()
    for tag in tags:
        repo = reference.repository(tag)
        first, _, rest = repo.partition("/")
        if not rest or not ("." in first or ":" in first or first == "localhost"):
            continue  # Docker Hub: not ours to probe
        if first in seen:
            continue
        seen.add(first)
        host, _, port = first.rpartition(":") if ":" in first and not first.endswith("]") else (first, "", "")
        host = host.strip("[]") or first
        try:
            with socket.create_connection((host, int(port or 443)), timeout=timeout):
                pass
        except OSError as err:
            raise BuildError(
                f'registry {first} (for tag "{tag}") does not answer: {err.strerror or err}',
                hint="start the registry or fix the tag's host:port; nothing was built or pushed",
            ) from None


def check_sources(target: PreparedTarget, *, docker_config: str | None, builder: str) -> None:
    """Before building: every source exists, and no two images (built or stitched) share
    a platform. Reads the registry only."""
    if not target.sources:
        return
    from buildkit_farm.registry.images import check_plan, inspect_image, plan_list

    indexes = [inspect_image(ref, docker_config=docker_config, builder=builder) for ref in target.sources]
    check_plan(plan_list(indexes, building=target.platforms))


def run_invocation(
    inv: Invocation,
    *,
    target: str,
    assignments: Sequence[Assignment],
    docker_config: str | None,
    echo: Echo = _stderr_echo,
    prefix: str = "",
) -> tuple[str, dict[str, float], float]:
    """Run one buildx build with live progress; return (digest, per-platform seconds, seconds).

    A failure raises BuildError naming the target, the platform, its node and the failing
    step's last lines.
    """
    from python_on_whales.exceptions import DockerException

    from buildkit_farm import docker as door

    docker = door.client(door.DockerPaths.resolve(docker_config))
    start = time.monotonic()
    tracker = ProgressTracker(inv.platforms, start=start)
    kwargs = dict(inv.kwargs)
    try:
        if kwargs.get("progress") == "tty":
            # buildx draws its own terminal UI; nothing to capture.
            docker.buildx.build(**kwargs)
        else:
            for line in docker.buildx.build(**kwargs, stream_logs=True):
                tracker.feed(line, time.monotonic())
                echo(prefix + line.rstrip("\n"))
    except DockerException as err:
        if err.stderr and not tracker.tail:
            for line in err.stderr.splitlines():
                tracker.feed(line, time.monotonic())
        raise _build_failure(target, inv, tracker, assignments, err.return_code) from None
    end = time.monotonic()
    digest = digest_from_metadata(Path(str(kwargs["metadata_file"])))
    return digest, tracker.durations(end), round(end - start, 2)


def _build_failure(
    target: str, inv: Invocation, tracker: ProgressTracker, assignments: Sequence[Assignment], code: int
) -> BuildError:
    platform = tracker.failed_platform()
    where = {a.platform: a for a in assignments}
    if platform and platform in where:
        a = where[platform]
        place = f'{platform} on node "{a.node}"' + (" (emulated)" if a.emulated else "")
    else:
        place = ", ".join(f'{a.platform} on "{a.node}"' for a in assignments if a.platform in inv.platforms)
    lines = tracker.failing_lines()
    text = "\n".join(f"  | {l}" for l in lines) if lines else "  (no log captured; rerun with --progress plain)"
    hint = "nothing was tagged; the tags still point where they pointed before"
    joined = "\n".join(lines)
    if "connection refused" in joined or "no such host" in joined or "dial tcp" in joined:
        hint = "the registry did not answer; start it or fix the tag's host:port. " + hint
    return BuildError(f'target "{target}": build failed for {place} (buildx exit {code}):\n{text}', hint=hint)


# ---------------------------------------------------------------------------------------
# The whole job
# ---------------------------------------------------------------------------------------


def node_views(config, status) -> tuple[NodeView, ...]:
    """Join the farm file's nodes (pins, contexts) with what `ensure_converged` observed.

    `status` is the reconciler's `FarmStatus`: per file node its status, BuildKit version
    and the platforms its BuildKit detected (native and emulated).
    """
    seen = {n.name: n for n in status.nodes}
    # Pools: a platform is pinned (in buildx, and so here) to its pool's active node only.
    active = {p.platform: p.active for p in getattr(status, "pools", ())}
    views = []
    for settings in config.node_settings():
        node = seen.get(settings.name)
        views.append(
            NodeView(
                name=settings.name,
                context=node.context if node is not None and node.context else settings.context,
                up=node is not None and node.status == "running",
                pinned=tuple(p for p in settings.platforms if active.get(p, settings.name) == settings.name),
                supported=tuple(node.detected) if node is not None else (),
                buildkit_version=node.version if node is not None else None,
                status=node.status if node is not None else "missing",
            )
        )
    return tuple(views)


def prepare(
    config, names: Sequence[str], options: BuildOptions, *, env: Mapping[str, str], terminal: bool = True
) -> list[PreparedTarget]:
    """Check every selected target's inputs before anything runs (pure).

    `terminal`: whether stderr is a terminal (buildx's tty display needs one).
    """
    if options.progress not in PROGRESS_MODES:
        raise UsageError(f'--progress "{options.progress}" is not one of {", ".join(PROGRESS_MODES)}')
    if options.progress == "tty" and not terminal:
        raise UsageError(
            "--progress tty needs a terminal on stderr", hint="use --progress plain (or auto) in pipelines"
        )
    if options.verify_run and config.builder.driver != "docker-container":
        raise UsageError(
            f"--verify-run runs each variant on the Docker engine of the node that built it; the {config.builder.driver} "
            "driver's nodes are BuildKit daemons without one",
            hint="build without --verify-run, then check each variant on an engine of its platform: "
            "docker run --platform PLATFORM IMAGE@DIGEST",
        )
    return [prepare_target(t, options, env=env) for t in select_targets(config, names)]


def build(
    config,
    names: Sequence[str] = (),
    options: BuildOptions = BuildOptions(),
    *,
    docker_config: str | None = None,
    up: bool = False,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    echo: Echo = _stderr_echo,
    out: Echo = print,
) -> tuple[list[TargetReport], FarmError | None]:
    """Build, push, check and publish the selected targets, in file order.

    Returns the reports and the first error (the remaining targets are not started), so
    the caller can still write `--report` / `--json` for a failed run.
    """
    env = dict(os.environ if env is None else env)
    prepared = prepare(config, names, options, env=env, terminal=dry_run or sys.stderr.isatty())
    builder = config.builder.name

    if dry_run:
        # Pins come from the file alone; the farm is not asked whether nodes are up.
        nodes = tuple(NodeView(s.name, s.context, True, tuple(s.platforms)) for s in config.node_settings())
        with tempfile.TemporaryDirectory(prefix="farm-build-") as tmp:
            for target in prepared:
                assignments = schedule(
                    target.platforms, nodes, target=target.name, allow_emulation=target.allow_emulation
                )
                plan = invocations(
                    target, builder=builder, metadata_dir=Path(tmp), progress=options.progress, assignments=assignments
                )
                contexts = {n.name: n.context for n in nodes}
                verify = [(a.platform, contexts[a.node]) for a in assignments] if options.verify_run else []
                out(f"# target {target.name}")
                for line in dry_run_lines(
                    target,
                    plan,
                    builder=builder,
                    docker_config=docker_config,
                    verify=verify,
                    verify_cmd=options.verify_cmd,
                ):
                    out(line)
        return [], None

    needed = {p for t in prepared for p in t.platforms}  # a down node no target needs does not stop the build
    state = _converged_state(config, docker_config=docker_config, up=up, echo=echo, needed=needed)
    nodes = node_views(config, state)
    scheduled = {
        t.name: schedule(t.platforms, nodes, target=t.name, allow_emulation=t.allow_emulation) for t in prepared
    }
    for target in prepared:
        for a in scheduled[target.name]:
            if a.emulated:
                echo(
                    f'farm: target "{target.name}": no node is pinned to {a.platform}; "{a.node}" will emulate it (allow_emulation)'
                )
    check_registries([tag for t in prepared for tag in t.tags])
    for target in prepared:
        check_sources(target, docker_config=docker_config, builder=builder)

    reports: list[TargetReport] = []
    for target in prepared:
        report = TargetReport(
            target=target.name, tags=list(target.tags), repo=target.repo, sources=list(target.sources)
        )
        reports.append(report)
        try:
            _build_one(
                target,
                scheduled[target.name],
                nodes,
                report,
                options=options,
                builder=builder,
                docker_config=docker_config,
                echo=echo,
            )
        except FarmError as err:
            # Pools: a node that died during the build -> that target once more, its platforms
            # moved to the next healthy node of their pools (docs/build.md "Pools at build time").
            retry = _pool_retry(
                config, target, scheduled[target.name], err, needed, docker_config=docker_config, echo=echo
            )
            if retry is None:
                report.ok, report.error = False, err.message
                return reports, err
            nodes, scheduled[target.name] = retry
            report = TargetReport(
                target=target.name, tags=list(target.tags), repo=target.repo, sources=list(target.sources)
            )
            reports[-1] = report
            try:
                _build_one(
                    target,
                    scheduled[target.name],
                    nodes,
                    report,
                    options=options,
                    builder=builder,
                    docker_config=docker_config,
                    echo=echo,
                )
            except FarmError as again:
                report.ok, report.error = False, again.message
                return reports, again
    return reports, None


def _pool_retry(config, target: PreparedTarget, assignments, err: FarmError, needed, *, docker_config, echo: Echo):
    """After a failed build: when a node that built it is no longer running and its pools have
    another healthy node, move the pins there (in place) and return the new (nodes,
    assignments); None otherwise (a failure of the build itself is not retried)."""
    if not isinstance(err, BuildError):
        return None
    from buildkit_farm.reconcile import converge

    used = {a.node for a in assignments if not a.emulated}
    now = {n.name: n for n in converge.status(config.desired, docker_config=docker_config).nodes}
    dead = {name for name in used if name in now and now[name].status != "running"}
    if not dead:
        return None
    pooled = {p: nodes for p, nodes in config.pools().items() if len(nodes) > 1}
    lost = [a.platform for a in assignments if a.node in dead]
    if not all(p in pooled for p in lost):
        return None
    echo(
        f'farm: target "{target.name}": node {", ".join(sorted(dead))} stopped during the build; '
        f"retrying {', '.join(lost)} once on the next healthy node of {'its pool' if len(lost) == 1 else 'their pools'}"
    )
    try:
        state = _converged_state(config, docker_config=docker_config, up=False, echo=echo, needed=needed, exclude=dead)
    except FarmError as why:
        echo(f"farm: no retry: {why.message}")
        return None
    nodes = node_views(config, state)
    return nodes, schedule(target.platforms, nodes, target=target.name, allow_emulation=target.allow_emulation)


def _converged_state(config, *, docker_config: str | None, up: bool, echo: Echo, needed=None, exclude=()):
    """The farm as observed once `farm up` has nothing left to do (or after doing it); pool
    pins moved to each pool's first healthy node, observed now."""
    from buildkit_farm.reconcile.converge import ensure_converged  # the reconciler's contract

    return ensure_converged(
        config.desired,
        docker_config=docker_config,
        up=up,
        echo=lambda line: echo(f"farm up: {line}"),
        needed=needed,
        exclude=exclude,
    )


def _build_one(
    target: PreparedTarget,
    assignments: Sequence[Assignment],
    nodes: Sequence[NodeView],
    report: TargetReport,
    *,
    options: BuildOptions,
    builder: str,
    docker_config: str | None,
    echo: Echo,
) -> None:
    from buildkit_farm.build import verify
    from buildkit_farm.registry.images import publish_list

    start = time.monotonic()
    by_name = {n.name: n for n in nodes}
    for a in assignments:
        report.platforms.append(
            PlatformReport(
                platform=a.platform, node=a.node, emulated=a.emulated, buildkit_version=by_name[a.node].buildkit_version
            )
        )
    platform_reports = {p.platform: p for p in report.platforms}

    # 1. Build and push by digest: no tag of the user's moves here.
    with tempfile.TemporaryDirectory(prefix="farm-build-") as tmp:
        plan = invocations(
            target, builder=builder, metadata_dir=Path(tmp), progress=options.progress, assignments=assignments
        )
        for inv in plan:
            echo(
                f'farm: target "{target.name}": {redact(render_command(inv.kwargs, docker_config=docker_config), target.secrets)}'
            )
        with _registry_trust():
            results = _run_all(
                plan, target=target.name, assignments=assignments, docker_config=docker_config, echo=echo
            )
    built_refs = []
    for inv, (digest, durations, _) in zip(plan, results):
        built_refs.append(f"{target.repo}@{digest}")
        for platform, seconds in durations.items():
            platform_reports[platform].duration_s = seconds

    # 2. Check what was pushed, still by digest: every platform, each variant's digest.
    variant_digest: dict[str, str] = {}
    for inv, ref in zip(plan, built_refs):
        index = verify.check_pushed(
            ref, inv.platforms, target=target.name, docker_config=docker_config, builder=builder
        )
        for v in index.variants:
            if not v.is_attestation and v.platform in inv.platforms:
                variant_digest[v.platform] = v.digest
                platform_reports[v.platform].digest = v.digest

    # 3. --verify-run: each variant on a node of its platform, by digest.
    if options.verify_run and plan:
        _verify_run(
            target,
            assignments,
            by_name,
            variant_digest,
            report,
            options=options,
            docker_config=docker_config,
            echo=echo,
        )

    # 4. Publish: the user's tags move only now, to one list (publish_list reads it back:
    # same digest under every tag, every platform).
    if target.variant_tags:
        for platform, digest in variant_digest.items():
            tag = f"{target.repo}:{platform_slug(platform)}"
            publish_list([tag], [f"{target.repo}@{digest}"], docker_config=docker_config, builder=builder)
            report.variant_tags.append(tag)
    echo(f'farm: target "{target.name}": publishing {", ".join(target.tags)}')
    report.digest = publish_list(
        list(target.tags), built_refs + list(target.sources), docker_config=docker_config, builder=builder
    )
    report.duration_s = round(time.monotonic() - start, 2)
    echo(f'farm: target "{target.name}": pushed {target.tags[0]}@{report.digest}')


def _verify_run(target, assignments, by_name, variant_digest, report, *, options, docker_config, echo) -> None:
    from buildkit_farm.build import verify

    jobs = [(a.platform, a.node, by_name[a.node].context, a.emulated) for a in assignments]
    for platform, node, _, emulated in jobs:
        echo(f'farm: verify {platform} on node "{node}"' + (" (emulated)" if emulated else ""))
    results = verify.verify_run(
        lambda platform: f"{target.repo}@{variant_digest[platform]}",
        jobs,
        command=options.verify_cmd,
        docker_config=docker_config,
    )
    report.verify = [VerifyReport(**r) for r in results]
    for r in results:
        echo(f'farm: verify {r["platform"]} on "{r["node"]}": exit {r["exit_code"]}')
        for line in r["output"].splitlines():
            echo(f"  {r['platform']} | {line}")
    failed = verify.failed_runs(results)
    if failed:
        names = ", ".join(f'{r["platform"]} on node "{r["node"]}" (exit {r["exit_code"]})' for r in failed)
        last = "\n".join(
            f"  | {r['platform']}: {line}" for r in failed for line in _meaningful(r["output"].splitlines())[-3:]
        )
        raise BuildError(
            f'target "{target.name}": the image builds but does not run: {names}' + (f"\n{last}" if last else ""),
            hint="the tags were not moved; the book's lesson: CMD is only checked when a container starts",
        )


@contextmanager
def _registry_trust():
    """Let the buildx client trust $FARM_REGISTRY_CA while it merges per-node manifests
    (it ignores the buildkitd config's CA; see LAB.md). python-on-whales' build takes no
    env, so the variable is set for the call's duration."""
    from buildkit_farm.registry.images import cert_env

    with cert_env(None) as extra:
        saved = {k: os.environ.get(k) for k in extra}
        os.environ.update(extra)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _run_all(plan: Sequence[Invocation], *, target: str, assignments, docker_config, echo: Echo):
    """Run the invocations: one in the foreground, several (per-platform Dockerfiles) in
    parallel with each line prefixed by its platform. All must succeed."""
    if not plan:  # a target made only of sources: nothing to build
        return []
    if len(plan) == 1:
        return [run_invocation(plan[0], target=target, assignments=assignments, docker_config=docker_config, echo=echo)]
    lock = threading.Lock()

    def locked_echo(line: str) -> None:
        with lock:
            echo(line)

    def one(inv: Invocation):
        return run_invocation(
            inv,
            target=target,
            assignments=assignments,
            docker_config=docker_config,
            echo=locked_echo,
            prefix=f"[{inv.label}] ",
        )

    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        futures = [pool.submit(one, inv) for inv in plan]
        errors = [f.exception() for f in futures]
    failures = [e for e in errors if e is not None]
    if failures:
        if len(failures) == 1:
            raise failures[0]
        raise BuildError("\n".join(str(e) for e in failures), hint=getattr(failures[0], "hint", None))
    return [f.result() for f in futures]


def _meaningful(lines: Sequence[str]) -> list[str]:
    # docker run's error ends with a blank line and a pointer to --help; keep the reason.
    return [l for l in lines if l.strip() and not l.startswith("Run 'docker run --help'")]


def render_text(reports: Sequence[TargetReport]) -> str:
    """The human summary printed after a build."""
    lines = []
    for r in reports:
        state = "ok" if r.ok else "FAILED"
        lines.append(f"{r.target}: {state}" + (f"  {r.digest}" if r.digest else ""))
        for tag in r.tags:
            lines.append(f"  tag       {tag}")
        for tag in r.variant_tags:
            lines.append(f"  variant   {tag}")
        for p in r.platforms:
            how = "emulated" if p.emulated else "native"
            secs = f"{p.duration_s:.1f}s" if p.duration_s is not None else "-"
            lines.append(
                f"  {p.platform:<14} node {p.node:<10} {how:<8} buildkit {p.buildkit_version or '?':<10} {secs}"
            )
        for source in r.sources:
            lines.append(f"  source    {source}")
        for v in r.verify:
            lines.append(f"  verify    {v.platform:<14} exit {v.exit_code}")
    return "\n".join(lines)


def reports_json(reports: Sequence[TargetReport]) -> str:
    return json.dumps({"targets": [r.to_dict() for r in reports]}, indent=2)
