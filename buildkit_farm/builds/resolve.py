"""Stage 1 of `farm build`, resolve: the selected targets with the command line applied.

In: the desired state's frozen `TargetSpec`s (checked once by `farmfile.rules` when the file
was loaded) and the `BuildOptions`. Out: one `ResolvedTarget` per selected target: tags
filled from `--var`, command-line overrides merged, secrets by reference and present in the
environment. Pure: it reads no file and starts no process (the farm file's rules already
checked the files exist), so a mistake here exits 2 before anything is built or pushed.
The one process of this stage, resolving `[bake]` files, is `expand_bake`, run by the caller
of the loader before anything else.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_farm.builds.overrides import SetOverride, TargetOverrides, overrides_for, platform_subset, unmatched
from buildkit_farm.errors import UsageError
from buildkit_farm.farmfile import bake, reference
from buildkit_farm.farmfile.desired import Desired, SecretRef, TargetSpec

if TYPE_CHECKING:
    from buildkit_farm.farmfile.model import FarmConfig

PROGRESS_MODES = ("auto", "plain", "tty", "quiet", "rawjson")  # quiet and rawjson: buildx's, passed through


SecretSpec = SecretRef  # the name the build side has always used


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
    platforms: tuple[str, ...] = ()  # --platform: a subset of each target's platforms
    sets: tuple[SetOverride, ...] = ()  # --set TARGET.KEY=VALUE, in flag order
    push: bool = True  # --no-push: build and check on every node, write nothing to any registry


@dataclass(frozen=True)
class ResolvedTarget:
    """A target with every option resolved (pure): what the run plan is made from."""

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
    secrets: tuple[SecretRef, ...]
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


def select_targets(desired: Desired, names: Sequence[str]) -> list[TargetSpec]:
    """The named targets (all by default) in file order; an unknown name raises UsageError."""
    targets = list(desired.targets)
    known = [t.name for t in targets]
    if not targets:
        raise UsageError(f"{desired.file}: no [[target]] to build", hint="add a [[target]] table to the farm file")
    if not names:
        return targets
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"{desired.file}: unknown target {', '.join(repr(n) for n in unknown)}",
            hint=f"targets in the file: {', '.join(known)}",
        )
    return [t for t in targets if t.name in names]


def resolve_target(target: TargetSpec, options: BuildOptions, *, env: Mapping[str, str]) -> ResolvedTarget:
    """The target with the command line applied: tags filled, overrides merged, secrets present (pure).

    The target's own rules (Dockerfiles, platforms, context) were checked by the loader;
    only what the command line brings is checked here.
    """
    name = target.name
    given = overrides_for(name, options.sets, file_values=_file_lists(target))
    tags = fill_tags(options.tags or _or(given.tags, target.tags), target=name, variables=options.vars, env=env)
    if not tags:
        raise UsageError(f'target "{name}": no tags to push', hint='add tags = ["registry/app:tag"] or pass --tag')
    secrets = _merged_secrets(target.secrets, options.secrets)
    check_secrets(secrets, target=name, env=env)
    ssh = tuple(options.ssh or target.ssh)
    if len(ssh) > 1:
        raise UsageError(
            f'target "{name}": only one ssh spec is supported, got {len(ssh)}', hint='e.g. ssh = ["default"]'
        )
    cache_to = tuple(options.cache_to or _or(given.cache_to, target.cache_to)) if options.push else ()
    if len(cache_to) > 1:
        raise UsageError(f'target "{name}": only one cache_to is supported, got {len(cache_to)}')
    platforms = _platforms(target, given, options.platforms)
    return ResolvedTarget(
        name=name,
        context=target.context,
        tags=tags,
        repo=reference.split_tag(tags[0])[0] if platforms else None,
        platforms=platforms,
        dockerfiles={p: f for p, f in target.dockerfiles if p in platforms},
        dockerfile=target.dockerfile,
        sources=target.sources,
        variant_tags=target.variant_tags,
        build_args={**dict(target.args), **given.args, **options.build_args},
        labels={**dict(target.labels), **given.labels, **options.labels},
        stage=options.target or given.stage or target.stage,
        no_cache=options.no_cache or bool(given.no_cache),
        pull=options.pull or bool(given.pull),
        secrets=secrets,
        ssh=ssh,
        cache_from=tuple(options.cache_from or _or(given.cache_from, target.cache_from)),
        cache_to=cache_to,
        provenance=_either(options.provenance, target.provenance),
        sbom=_either(options.sbom, target.sbom),
        allow_emulation=target.allow_emulation,
    )


def _or(given: tuple[str, ...] | None, own: Sequence[str]) -> tuple[str, ...]:
    """A --set list when one was given, else the file's."""
    return tuple(own) if given is None else given


def _file_lists(target: TargetSpec) -> dict[str, Sequence[str]]:
    """The file's lists that `--set KEY+=VALUE` appends to."""
    return {
        "platform": target.platforms,
        "tags": target.tags,
        "cache-from": target.cache_from,
        "cache-to": target.cache_to,
    }


def _platforms(target: TargetSpec, given: TargetOverrides, wanted: Sequence[str]) -> tuple[str, ...]:
    """The platforms to build: `--set TARGET.platform` (else the file's), narrowed by `--platform`."""
    platforms = _or(given.platforms, target.platforms)
    files = dict(target.dockerfiles)
    lacking = [p for p in platforms if files and p not in files]
    if lacking:
        raise UsageError(
            f'--set {target.name}.platform: {", ".join(lacking)} has no Dockerfile in target "{target.name}"',
            hint=f"its per-platform Dockerfiles are for {', '.join(files)}",
        )
    return platform_subset(target.name, platforms, wanted) if platforms else platforms  # sources only: nothing built


def _merged_secrets(own: Sequence[SecretRef], given: Sequence[str]) -> tuple[SecretRef, ...]:
    """The target's secrets, each `--secret` replacing the one with its id."""
    secrets = list(own)
    for spec in given:
        parsed = parse_secret(spec)
        secrets = [s for s in secrets if s.id != parsed.id] + [parsed]
    return tuple(secrets)


def _either(option: bool | None, own: bool) -> bool:
    return own if option is None else option


def check_options(options: BuildOptions, *, driver: str, terminal: bool) -> None:
    """The command line's own rules (exit 2): progress mode, --verify-run, --verify-cmd.

    `terminal`: whether stderr is a terminal (buildx's tty display needs one).
    """
    if options.progress not in PROGRESS_MODES:
        raise UsageError(f'--progress "{options.progress}" is not one of {", ".join(PROGRESS_MODES)}')
    if options.progress == "tty" and not terminal:
        raise UsageError(
            "--progress tty needs a terminal on stderr", hint="use --progress plain (or auto) in pipelines"
        )
    if options.verify_run and not options.push:
        raise UsageError(
            "--verify-run runs each variant from the registry, and --no-push writes nothing there",
            hint="drop --verify-run for a build that is not pushed (every platform is still built on its node)",
        )
    if options.verify_run and driver != "docker-container":
        raise UsageError(
            "--verify-run runs each variant on the Docker engine of the node that built it; "
            f"the {driver} "
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


def resolve(
    desired: Desired, names: Sequence[str], options: BuildOptions, *, env: Mapping[str, str], terminal: bool = True
) -> list[ResolvedTarget]:
    """Stage 1: every selected target resolved, every input checked, before anything runs (pure)."""
    check_options(options, driver=desired.builder.driver, terminal=terminal)
    selected = select_targets(desired, names)
    unmatched(options.sets, [t.name for t in selected])
    return [resolve_target(t, options, env=env) for t in selected]


def expand_bake(config: FarmConfig, *, variables: Mapping[str, str], docker_config: str | None) -> bake.Expanded:
    """The farm file's `[bake]` targets resolved by `docker buildx bake --print` (through the
    process door, in the farm file's folder; `--var` values are bake's variables) and added to
    the desired state. The loader's caller runs it, once, right after loading; it is the
    only process before the build's own."""
    from buildkit_farm import buildx_version, docker

    if config.bake is None:
        return bake.Expanded(config, {})
    base = config.file.parent
    args = bake.print_args(config.bake, base=base)
    # buildx answers its version beside the print (one `buildx version` per run), and an
    # unsupported buildx is the error shown, whatever the print said: ~0.2 s off the path on 0.29.
    with buildx_version.checked(docker_config):
        done = docker.print_bake(docker.DockerPaths.resolve(docker_config), args, cwd=base, variables=variables)
    printed = bake.read_printed(done.returncode, done.stdout, done.stderr, config.bake, base=base)
    return bake.expand(config, printed)
