"""Preparing a build: select the targets, resolve tags, secrets and options, check every input.

All pure (files are checked to exist; nothing talks to Docker): a mistake here exits 2
before anything is built or pushed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_farm.errors import UsageError
from buildkit_farm.farmfile import reference

PROGRESS_MODES = ("auto", "plain", "tty")


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
    tags: Sequence[str], *, target: str, variables: Mapping[str, str], env: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Fill `{name}` placeholders from `variables` (--var) only.

    Never from the environment: `--tag 'app:{NPM_TOKEN}'` must not push a token as a tag.
    `env` is accepted and ignored, so callers need not change.
    """
    filled = []
    for tag in tags:
        missing = [name for name in reference.placeholders(tag) if not variables.get(name)]
        if missing:
            names = ", ".join(f"{{{m}}}" for m in dict.fromkeys(missing))
            example = " ".join(f"--var {m}=VALUE" for m in dict.fromkeys(missing))
            raise UsageError(
                f'target "{target}": tag "{tag}" has unfilled {names}',
                hint=f"pass {example} (placeholders are filled from --var only, never from the environment)",
            )
        result = reference.PLACEHOLDER.sub(lambda match: variables[match.group(1)], tag)
        if "{" in result or "}" in result:
            raise UsageError(
                f'target "{target}": tag "{tag}" has a malformed placeholder',
                hint="placeholders look like {name}: letters, digits and _",
            )
        filled.append(check_tag(result, target=target))
    return tuple(dict.fromkeys(filled))


_CREDENTIAL = re.compile(
    r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|(?:AKIA|ASIA)[A-Z0-9]{16}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY|xox[abpr]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20}|"
    r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@)"
)


def credential_warnings(build_args: Mapping[str, str], *, target: str) -> list[str]:
    """A warning per build argument whose value looks like a credential (the value is never shown):
    build args are kept in the image's history, secrets are not."""
    return [
        f'target "{target}": build arg {key} looks like a credential; build args stay in the image '
        f"history for anyone who pulls it: pass it with --secret id={key.lower()},env=VAR instead"
        for key, value in build_args.items()
        if _CREDENTIAL.search(value or "")
    ]


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
    # A mistyped spec might hold a value (even a bare one, `--secret ghp_…`): show only the
    # known key names, everything else as "…".
    known = ("id", "env", "src", "type")
    return ",".join(
        f"{key}=…" if sep and key.strip() in known else "…"
        for key, sep, _ in (part.partition("=") for part in spec.split(","))
    )


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
        repo=reference.split_tag(tags[0])[0] if platforms else None,
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
            "--verify-run runs each variant on the Docker engine of the node that built it; "
            f"the {config.builder.driver} "
            "driver's nodes are BuildKit daemons without one",
            hint="build without --verify-run, then check each variant on an engine of its platform: "
            "docker run --platform PLATFORM IMAGE@DIGEST",
        )
    if options.verify_cmd is not None:
        try:
            shlex.split(options.verify_cmd)
        except ValueError as err:
            raise UsageError(
                f"--verify-cmd cannot be split like a shell command line: {err}",
                hint="quote it as a shell would, e.g. --verify-cmd \"sh -c 'echo ok'\"",
            ) from None
    return [prepare_target(t, options, env=env) for t in select_targets(config, names)]
