"""The file's targets: their rules, and their frozen specs.

`check_target` is the one place a [[target]]'s rules are written (a bake target goes through
them too): Dockerfile(s) against platforms, something to build, pinned platforms, the
context and every Dockerfile exist, tags owned by one target, secrets by reference.
`target_spec` turns a checked table into the plain `TargetSpec` `farm build` builds from
(pure: it fills the defaults and joins each platform with its pool of nodes).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_farm.errors import ConfigIssue
from buildkit_farm.farmfile import platforms as platform_names
from buildkit_farm.farmfile.desired import SecretRef, TargetSpec
from buildkit_farm.farmfile.paths import check_dir, check_file
from buildkit_farm.farmfile.section import Section
from buildkit_farm.farmfile.words import quote

if TYPE_CHECKING:
    from buildkit_farm.farmfile.model import TargetConfig

DEFAULT_DOCKERFILE = "Dockerfile"


def target_spec(t: TargetConfig, pools: Mapping[str, tuple[str, ...]], *, origin: str | None = None) -> TargetSpec:
    """The plain, frozen value of one checked target."""
    platforms = tuple(dict.fromkeys(tuple(t.platforms) or tuple(t.dockerfiles)))
    dockerfile = None
    if platforms and not t.dockerfiles:
        dockerfile = t.dockerfile if t.dockerfile is not None else t.context / DEFAULT_DOCKERFILE
    return TargetSpec(
        name=t.name,
        context=t.context,
        dockerfile=dockerfile,
        dockerfiles=tuple(t.dockerfiles.items()),
        platforms=platforms,
        pools=tuple((p, tuple(pools.get(p, ()))) for p in platforms),
        tags=tuple(t.tags),
        sources=tuple(t.sources),
        variant_tags=t.variant_tags,
        args=tuple(t.args.items()),
        labels=tuple(t.labels.items()),
        stage=t.target,
        cache_from=tuple(t.cache_from),
        cache_to=tuple(t.cache_to),
        provenance=t.provenance,
        sbom=t.sbom,
        secrets=tuple(SecretRef(s.id, s.env, str(s.src) if s.src else None) for s in t.secrets),
        ssh=tuple(t.ssh),
        allow_emulation=tuple(t.allow_emulation),
        origin=origin,
    )


# --------------------------------------------------------------------------- the rules
def check_target(
    target: Section, pinned: dict[str, str] | None, tag_owner: dict[str, str], issues: list[ConfigIssue]
) -> None:
    """Every rule of one [[target]] of the file or of a resolved bake target (the one place they
    are written: `farm build` trusts them)."""
    t: TargetConfig = target.model
    knows_what = target.has("platforms", "dockerfiles", "dockerfile", "sources")
    _check_dockerfile_keys(target, issues)
    platforms = _check_platforms(target, knows_what, issues)
    if pinned is not None and target.whole("allow_emulation"):
        _check_pinned(target, platforms, pinned, issues)
    for index, platform in enumerate(t.allow_emulation):
        if platform not in platforms and knows_what and target.whole("platforms", "dockerfiles"):
            issues.append(
                ConfigIssue(
                    target.at("allow_emulation", index),
                    f"{platform} is not one of the target's platforms",
                    "allow_emulation lists platforms the target builds",
                )
            )
    if knows_what and target.has("context"):
        _check_inputs(target, issues)
    _check_target_lists(target, tag_owner, issues)


def _builds(t: TargetConfig) -> bool:
    """Whether the target builds anything (else it only stitches `sources`)."""
    return bool(t.platforms or t.dockerfiles or t.dockerfile is not None or not t.sources)


def _dockerfiles_path(target: Section, platform: str) -> str:
    """The key path of a platform's entry in `dockerfiles`, in the file's own spelling."""
    raw = target.raw.get("dockerfiles") if isinstance(target.raw.get("dockerfiles"), dict) else {}
    own_key = {_normalised(key): key for key in raw}  # canonical -> the file's own spelling
    return f"{target.label}.dockerfiles.{quote(own_key.get(platform, platform))}"


def _check_dockerfile_keys(target: Section, issues: list[ConfigIssue]) -> None:
    """dockerfile or dockerfiles, not both; no platform listed twice under two aliases."""
    t: TargetConfig = target.model
    label, raw = target.label, target.raw
    if t.dockerfile is not None and t.dockerfiles:
        issues.append(
            ConfigIssue(
                f"{label}.dockerfiles",
                "cannot be used together with dockerfile",
                "use dockerfile for one multi-arch Dockerfile, or dockerfiles for one per platform",
            )
        )
    raw_dockerfiles = raw.get("dockerfiles") if isinstance(raw.get("dockerfiles"), dict) else {}
    _check_alias_duplicates(f"{label}.dockerfiles", list(raw_dockerfiles), issues, keys=True)
    _check_alias_duplicates(f"{label}.platforms", raw.get("platforms") or [], issues)
    _check_alias_duplicates(f"{label}.allow_emulation", raw.get("allow_emulation") or [], issues)


def _check_platforms(target: Section, knows_what: bool, issues: list[ConfigIssue]) -> tuple[str, ...]:
    """Something to build (or only sources), and `platforms` matching `dockerfiles`; the target's platforms."""
    t: TargetConfig = target.model
    platforms = t.platforms or tuple(t.dockerfiles)
    if not knows_what:
        return ()
    if _builds(t) and not platforms:
        issues.append(
            ConfigIssue(
                target.label,
                "platforms is required",
                'list the platforms to build, e.g. platforms = ["linux/amd64", "linux/arm64"]; '
                "or stitch only with sources = [...]",
            )
        )
    if not (t.platforms and t.dockerfiles):
        return platforms
    for index, platform in enumerate(t.platforms):
        if platform not in t.dockerfiles:
            issues.append(
                ConfigIssue(
                    target.at("platforms", index),
                    f"{platform} has no Dockerfile in dockerfiles",
                    f'add "{platform}" = "Dockerfile.{platform.replace("/", "-")}" to dockerfiles, '
                    "or drop platforms (the keys of dockerfiles imply it)",
                )
            )
    for key in t.dockerfiles if target.whole("platforms") else ():
        if key not in t.platforms:
            issues.append(
                ConfigIssue(
                    _dockerfiles_path(target, key),
                    f"{key} is not in the target's platforms",
                    "add it to platforms, or drop platforms (the keys of dockerfiles imply it)",
                )
            )
    return platforms


def _check_pinned(
    target: Section, platforms: tuple[str, ...], pinned: dict[str, str], issues: list[ConfigIssue]
) -> None:
    """Every platform is pinned to a node, or accepted under QEMU by name."""
    t: TargetConfig = target.model
    for index, platform in enumerate(platforms):
        if platform not in pinned and platform not in t.allow_emulation:
            where = target.at("platforms", index) if t.platforms else _dockerfiles_path(target, platform)
            issues.append(
                ConfigIssue(
                    where,
                    f"{platform} is pinned to no node",
                    f'pin it in some node\'s platforms, or accept QEMU with allow_emulation = ["{platform}"]',
                )
            )


def _check_inputs(target: Section, issues: list[ConfigIssue]) -> None:
    """The context folder and every Dockerfile exist; a target of sources only has no build settings."""
    t: TargetConfig = target.model
    label = target.label
    if not _builds(t):
        if t.target is not None or t.args or t.cache_from or t.cache_to or t.secrets or t.ssh or t.variant_tags:
            issues.append(
                ConfigIssue(
                    label,
                    "builds nothing: only sources are stitched",
                    "build settings (target, args, cache_from, cache_to, secrets, ssh, variant_tags) "
                    "need platforms or dockerfiles",
                )
            )
        return
    if not check_dir(f"{label}.context", t.context, issues):
        return
    if t.dockerfiles:
        for key, file in t.dockerfiles.items():
            check_file(_dockerfiles_path(target, key), file, issues, hint=_dockerfile_hint(t, file))
    elif t.dockerfile is not None:
        check_file(f"{label}.dockerfile", t.dockerfile, issues, hint=_dockerfile_hint(t, t.dockerfile))
    else:
        check_file(
            f"{label}.context",
            t.context / DEFAULT_DOCKERFILE,
            issues,
            hint="a target builds <context>/Dockerfile unless it sets dockerfile or dockerfiles",
        )


def _check_target_lists(target: Section, tag_owner: dict[str, str], issues: list[ConfigIssue]) -> None:
    """A target's tags (each owned by one target), sources, secrets and cache entries."""
    t: TargetConfig = target.model
    label = target.label
    for index, tag in enumerate(t.tags):
        if tag in tag_owner and tag_owner[tag] != t.name:
            issues.append(
                ConfigIssue(
                    target.at("tags", index),
                    f"{quote(tag)} is also a tag of target {quote(tag_owner[tag])}",
                    "two targets would overwrite each other's image",
                )
            )
        tag_owner.setdefault(tag, t.name)
    if len(set(t.tags)) != len(t.tags):
        issues.append(ConfigIssue(f"{label}.tags", "lists a tag twice"))
    if len(set(t.sources)) != len(t.sources):
        issues.append(ConfigIssue(f"{label}.sources", "lists an image twice"))

    seen_ids: set[str] = set()
    for index, secret in enumerate(t.secrets):
        path = target.at("secrets", index)
        if secret.id in seen_ids:
            issues.append(ConfigIssue(f"{path}.id", f"secret id {quote(secret.id)} is used twice"))
        seen_ids.add(secret.id)
        if (secret.env is None) == (secret.src is None):
            issues.append(
                ConfigIssue(
                    path,
                    "needs exactly one of env or src",
                    'e.g. { id = "npm", env = "NPM_TOKEN" } or { id = "npm", src = "secrets/npmrc" }',
                )
            )
        if secret.src is not None:
            check_file(f"{path}.src", secret.src, issues)
    for field in ("cache_from", "cache_to", "ssh"):
        for index, value in enumerate(getattr(t, field)):
            if not value.strip():
                issues.append(ConfigIssue(target.at(field, index), "must not be empty"))
    if t.target is not None and not t.target.strip():
        issues.append(ConfigIssue(f"{label}.target", "must not be empty", "the name of a stage: FROM ... AS <name>"))


def _dockerfile_hint(t: TargetConfig, file: Path) -> str:
    in_context = t.context / file.name
    try:
        if in_context != file and in_context.is_file():
            return f"paths are relative to the farm file's folder, not to the context: did you mean {in_context}?"
    except (OSError, ValueError):
        pass
    return "paths are relative to the farm file's folder"


def _check_alias_duplicates(path: str, raw: Any, issues: list[ConfigIssue], *, keys: bool = False) -> None:
    if not isinstance(raw, list):
        return
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        try:
            canonical = platform_names.normalise(item)
        except ValueError:
            continue
        if canonical in seen:
            where = f"{path}.{quote(item)}" if keys else f"{path}[{index}]"
            issues.append(
                ConfigIssue(where, f"{quote(item)} is {canonical} again", "aliases count: list each platform once")
            )
        seen.setdefault(canonical, index)


def _normalised(name: Any) -> Any:
    try:
        return platform_names.normalise(name)
    except ValueError:
        return name
