"""The exact Docker commands of a build (pure): each build as a bake target, the bake and
imagetools command lines. Part of stage 2 (plan the run).

Every argv starts from `buildkit_farm.docker.argv` (the one door); secrets are redacted
from anything shown to people.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_farm import docker, errors
from buildkit_farm.builds.resolve import _CREDENTIAL, ResolvedTarget, SecretSpec
from buildkit_farm.builds.schedule import Assignment

STAGING_TAG = "buildkit-farm-staging"


@dataclass(frozen=True)
class Invocation:
    """One image build of a target, written one way: the bake target buildx is given.

    Every build of a run goes into a `docker buildx bake` definition as `spec`, under `key`;
    `--dry-run` prints that same definition, so what is shown is what runs.
    """

    platforms: tuple[str, ...]
    dockerfile: Path
    spec: Mapping[str, Any]  # the bake target (JSON): context, dockerfile, platforms, output, …
    label: str  # how its log lines and errors name it, e.g. "linux/arm64" or "linux/amd64,linux/arm64"
    key: str = ""  # its bake target name, unique in the run


def _csv_dict(spec: str) -> dict[str, str]:
    # "type=registry,ref=x" -> dict; a bare reference means a registry cache.
    if "=" not in spec:
        return {"type": "registry", "ref": spec}
    return dict(part.split("=", 1) for part in spec.split(",") if part)


def platform_slug(platform: str) -> str:
    """`linux/arm/v7` -> `linux-arm-v7`, the book's per-variant tag."""
    return platform.replace("/", "-")


def invocations(
    prepared: ResolvedTarget, assignments: Sequence[Assignment] = (), *, push: bool = True
) -> tuple[Invocation, ...]:
    """The builds of a target (pure): each a bake target pushing by digest (`push=False`,
    --no-push: the same image export, written to no registry).

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
    if prepared.sources_only:
        return ()
    node_of = {a.platform: a.node for a in assignments}
    common = _common_spec(prepared)
    groups = _groups(prepared, {a.platform for a in assignments if a.emulated})
    out: list[Invocation] = []
    for label, dockerfile, platforms in groups:
        nodes = {node_of.get(p, p) for p in platforms}
        output = {
            "type": "image",
            "name": f"{prepared.repo}:{STAGING_TAG}" if len(nodes) > 1 else prepared.repo,
            "push-by-digest": "true",
            "name-canonical": "true",
            "push": "true" if push else "false",
        }
        spec = {**common, "dockerfile": str(dockerfile), "platforms": list(platforms), "output": [_csv(output)]}
        key = _key(prepared.name if len(groups) == 1 else f"{prepared.name}_{label}")
        out.append(Invocation(tuple(platforms), Path(str(dockerfile)), spec, label, key))
    return tuple(out)


def _groups(prepared: ResolvedTarget, emulated: Collection[str]) -> list[tuple[str, Path | None, tuple[str, ...]]]:
    """(label, Dockerfile, platforms) per build: per platform with per-platform Dockerfiles,
    else the pinned platforms together and each emulated one alone."""
    if prepared.dockerfiles:
        return [(p, prepared.dockerfiles[p], (p,)) for p in prepared.platforms]
    pinned = tuple(p for p in prepared.platforms if p not in emulated)
    groups = [(",".join(pinned), prepared.dockerfile, pinned)] if pinned else []
    return groups + [(p, prepared.dockerfile, (p,)) for p in prepared.platforms if p in emulated]


def _common_spec(prepared: ResolvedTarget) -> dict[str, Any]:
    """The bake target keys every build of a target shares."""
    spec: dict[str, Any] = {
        "context": str(prepared.context),
        "args": dict(prepared.build_args),
        "labels": dict(prepared.labels),
        "attest": [
            "type=provenance" + ("" if prepared.provenance else ",disabled=true"),
            "type=sbom" + ("" if prepared.sbom else ",disabled=true"),
        ],
    }
    optional: dict[str, Any] = {
        "target": prepared.stage,
        "no-cache": prepared.no_cache or None,
        "pull": prepared.pull or None,
        "secret": [s.flag() for s in prepared.secrets],
        "ssh": list(prepared.ssh[:1]),
        "cache-from": [_csv(_csv_dict(c)) for c in prepared.cache_from],
        "cache-to": [_csv(_csv_dict(c)) for c in prepared.cache_to[:1]],
    }
    spec.update({key: value for key, value in optional.items() if value})
    return spec


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
            out.append(redact_secret(arg))
        elif hide_next == "--build-arg":
            out.append(shown_build_arg(arg))
        else:
            out.append(arg)
        hide_next = arg if arg in ("--secret", "--build-arg") and hide_next is None else None
    return errors.redact(shlex.join(out))


def redact_secret(flag: str) -> str:
    """`id=tok,env=TOKEN` -> `id=tok,env=REDACTED`: only the id and type are shown."""
    parts = [part.partition("=") for part in flag.split(",")]
    return ",".join(f"{k}={v}" if k in ("id", "type") else f"{k}=REDACTED" for k, _, v in parts)


_BAKE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def _key(name: str) -> str:
    return _BAKE_NAME.sub("_", name)


def bake_names(plan: Sequence[tuple[str, Invocation]]) -> list[str]:
    """A bake target name per (farm target, invocation): the target's name (`.` → `_`), plus the
    invocation's label when the target has several (per-platform Dockerfiles, emulated platforms)."""
    count: dict[str, int] = {}
    for target, _ in plan:
        count[target] = count.get(target, 0) + 1
    return [_key(target if count[target] == 1 else f"{target}_{inv.label}") for target, inv in plan]


def bake_definition(plan: Sequence[tuple[str, Invocation]], *, shown: bool = False) -> dict[str, object]:
    """One bake definition (JSON): one bake target per build, each its `Invocation.spec`.

    `shown`: for people (`--dry-run`): every secret reduced to its id, and build args that look
    like credentials hidden.
    """
    targets: dict[str, object] = {}
    for name, (_, inv) in zip(bake_names(plan), plan):
        spec = dict(inv.spec)
        if shown and spec.get("secret"):
            spec["secret"] = [redact_secret(flag) for flag in spec["secret"]]
        if shown and spec.get("args"):
            pairs = (shown_build_arg(f"{k}={v}").partition("=") for k, v in spec["args"].items())
            spec["args"] = {k: v for k, _, v in pairs}
        targets[inv.key or name] = spec
    return {"group": {"default": {"targets": list(targets)}}, "target": targets}


def bake_allow(definition: Mapping[str, Any]) -> list[str]:
    """The `--allow` flags buildx >= 0.20 wants for a generated definition (pure).

    The definition is written to a temporary folder, so every local path it names is outside
    bake's working folder: fs.read for each context, Dockerfile folder, secret file, ssh key
    and local cache read; fs.write for each local cache written. Farm passes them itself.
    """
    read: set[str] = set()
    write: set[str] = set()
    for spec in dict(definition.get("target") or {}).values():
        read.update(_read_paths(spec))
        caches = map(_csv_dict, spec.get("cache-to") or ())
        write.update(c.get("dest", "") for c in caches if c.get("type") == "local")
    flags = [f"--allow=fs.read={os.path.abspath(p)}" for p in sorted(read) if p]
    return flags + [f"--allow=fs.write={os.path.abspath(p)}" for p in sorted(write) if p]


def _read_paths(spec: Mapping[str, Any]) -> set[str]:
    """The local paths one bake target reads: context, Dockerfile folder, secret files, ssh keys, local caches."""
    read = {str(spec["context"]), os.path.dirname(str(spec["dockerfile"]))}
    read.update(_csv_dict(s)["src"] for s in spec.get("secret") or () if "src=" in s)
    for ssh in spec.get("ssh") or ():
        read.update(p for p in ssh.partition("=")[2].split(",") if p)
    caches = map(_csv_dict, spec.get("cache-from") or ())
    read.update(c.get("src", "") for c in caches if c.get("type") == "local")
    return read


def bake_command(
    definition: Path,
    *,
    builder: str,
    metadata_file: Path,
    progress: str,
    docker_config: str | None = None,
    program: str | None = "docker",
    allow: Sequence[str] = (),
) -> list[str]:
    """`docker buildx bake` of the run's definition: the argv the build runs (`program=None`:
    the docker binary on PATH) and --dry-run shows. `allow`: its `--allow` flags (`bake_allow`)."""
    mode = progress if progress in ("tty", "plain", "quiet", "rawjson") else "auto"
    return docker.argv(docker.DockerPaths.resolve(docker_config), program=program) + [
        "buildx",
        "bake",
        *allow,
        "--file",
        str(definition),
        "--builder",
        builder,
        "--metadata-file",
        str(metadata_file),
        "--progress",
        mode,
    ]
