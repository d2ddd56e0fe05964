"""The exact Docker commands of a build (pure): buildx arguments, and the lines `--dry-run` shows.

Every argv starts from `buildkit_farm.docker.argv` (the one door); secrets are redacted
from anything shown to people.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_farm import docker, errors
from buildkit_farm.builds.prepare import _CREDENTIAL, PreparedTarget, SecretSpec
from buildkit_farm.builds.schedule import Assignment

STAGING_TAG = "buildkit-farm-staging"


@dataclass(frozen=True)
class Invocation:
    """One `docker buildx build`: the python-on-whales arguments plus what it builds."""

    platforms: tuple[str, ...]
    dockerfile: Path
    kwargs: Mapping[str, Any]  # for python_on_whales docker.buildx.build
    label: str  # how its log lines and errors name it, e.g. "linux/arm64" or "all"


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
    common: dict[str, Any] = {
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
    out: list[Invocation] = []
    groups: list[tuple[str, Path | None, tuple[str, ...]]]
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
        out.append(Invocation(platforms=tuple(platforms), dockerfile=Path(str(dockerfile)), kwargs=kwargs, label=label))
    return tuple(out)


def render_command(kwargs: Mapping[str, Any], *, docker_config: str | None = None) -> list[str]:
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
    """`docker [--config DIR]`, the start of every command --dry-run shows (from the door)."""
    return docker.argv(docker.DockerPaths.resolve(docker_config), program="docker")


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


# A build arg whose name says it holds a credential: its value is never shown.
_SECRET_ARG_NAME = re.compile(r"pass|pwd|token|secret|key|auth|cred", re.IGNORECASE)


def shown_build_arg(pair: str) -> str:
    """`KEY=VALUE` as a printed command line shows it: the value hidden when the name or the
    value looks like a credential (build args are echoed for every build and by --dry-run)."""
    key, sep, value = pair.partition("=")
    if sep and value and (_SECRET_ARG_NAME.search(key) or errors.redact(value) != value or _CREDENTIAL.search(value)):
        return f"{key}=REDACTED"
    return pair


def redact(argv: Sequence[str], secrets: Sequence[SecretSpec] = ()) -> str:
    """Shell-quoted argv with every --secret reduced to its id (names of env vars and files
    are not secret, but a user's mistake might put a value there), build args that look like
    credentials hidden, and any other credential redacted as in messages."""
    out = []
    hide_next = None
    for arg in argv:
        if hide_next == "--secret":
            parts = [part.partition("=") for part in arg.split(",")]
            out.append(",".join(f"{k}={v}" if k in ("id", "type") else f"{k}=REDACTED" for k, _, v in parts))
        elif hide_next == "--build-arg":
            out.append(shown_build_arg(arg))
        else:
            out.append(arg)
        hide_next = arg if arg in ("--secret", "--build-arg") and hide_next is None else None
    return errors.redact(shlex.join(out))


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

    The registry reads and writes after the build go through `buildkit_farm.registry` (read, publish),
    which runs them as shown (plus reading every source before `create`).
    """
    lines = [redact(render_command(inv.kwargs, docker_config=docker_config), prepared.secrets) for inv in plan]
    digests = [f"{prepared.repo}@<digest of {inv.label}>" for inv in plan]
    lines += [
        shlex.join(inspect_command(ref, builder=builder, docker_config=docker_config))
        for ref in list(prepared.sources) + digests
    ]
    for platform, context in verify:  # (platform, the context of the node that built it)
        variant = f"{prepared.repo}@<digest of {platform}>"
        docker = _docker(docker_config) + ["--context", context]
        lines.append(shlex.join([*docker, "pull", "--quiet", "--platform", platform, variant]))
        command = shlex.split(verify_cmd) if verify_cmd else []
        lines.append(shlex.join([*docker, "run", "--rm", "--platform", platform, "--pull", "never", variant, *command]))
    if prepared.variant_tags:
        for p in prepared.platforms:
            variant = f"{prepared.repo}@<digest of {p}>"
            lines.append(
                shlex.join(
                    publish_command(
                        [f"{prepared.repo}:{platform_slug(p)}"], [variant], builder=builder, docker_config=docker_config
                    )
                )
            )
    lines.append(
        shlex.join(
            publish_command(
                prepared.tags, digests + list(prepared.sources), builder=builder, docker_config=docker_config
            )
        )
    )
    lines += [shlex.join(inspect_command(tag, builder=builder, docker_config=docker_config)) for tag in prepared.tags]
    return lines


_BAKE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def bake_names(plan: Sequence[tuple[str, Invocation]]) -> list[str]:
    """A bake target name per (farm target, invocation): the target's name (`.` → `_`), plus the
    invocation's label when the target has several (per-platform Dockerfiles, emulated platforms)."""
    count: dict[str, int] = {}
    for target, _ in plan:
        count[target] = count.get(target, 0) + 1
    names = []
    for target, inv in plan:
        name = target if count[target] == 1 else f"{target}_{inv.label}"
        names.append(_BAKE_NAME.sub("_", name))
    return names


def bake_definition(plan: Sequence[tuple[str, Invocation]]) -> dict[str, object]:
    """One bake definition (JSON) for the whole run: one bake target per `docker buildx build`
    that `invocations` makes, with the same settings and the same push-by-digest output."""
    targets: dict[str, object] = {}
    for name, (_, inv) in zip(bake_names(plan), plan):
        kw = inv.kwargs
        spec: dict[str, object] = {
            "context": str(kw["context_path"]),
            "dockerfile": str(kw["file"]),
            "platforms": list(kw.get("platforms") or []),
            "args": dict(kw.get("build_args") or {}),
            "labels": dict(kw.get("labels") or {}),
            "output": [_csv(kw["output"])],
            "attest": [
                "type=provenance" + ("" if kw.get("provenance") else ",disabled=true"),
                "type=sbom" + ("" if kw.get("sbom") else ",disabled=true"),
            ],
        }
        if kw.get("target"):
            spec["target"] = kw["target"]
        if kw.get("cache") is False:
            spec["no-cache"] = True
        if kw.get("pull"):
            spec["pull"] = True
        if kw.get("secrets"):
            spec["secret"] = list(kw["secrets"])
        if kw.get("ssh"):
            spec["ssh"] = [str(kw["ssh"])]
        if kw.get("cache_from"):
            spec["cache-from"] = [_csv(c) for c in kw["cache_from"]]
        if kw.get("cache_to"):
            spec["cache-to"] = [_csv(kw["cache_to"])]
        targets[name] = spec
    return {"group": {"default": {"targets": list(targets)}}, "target": targets}


def bake_command(
    definition: Path,
    *,
    builder: str,
    metadata_file: Path,
    progress: str,
    docker_config: str | None = None,
    program: str | None = "docker",
) -> list[str]:
    """`docker buildx bake` of the run's definition: the argv the build runs (`program=None`:
    the docker binary on PATH) and --dry-run shows."""
    mode = "tty" if progress == "tty" else "plain" if progress == "plain" else "auto"
    return docker.argv(docker.DockerPaths.resolve(docker_config), program=program) + [
        "buildx",
        "bake",
        "--file",
        str(definition),
        "--builder",
        builder,
        "--metadata-file",
        str(metadata_file),
        "--progress",
        mode,
    ]
