"""Targets from bake files: the farm file's `[bake]` table, resolved by buildx itself.

`docker buildx bake --print` (run by the loader's caller through `buildkit_farm.docker`, in the
farm file's folder; this module builds its arguments and reads what it printed) resolves
variables, `inherits`, `matrix` and groups exactly as bake does; each resolved target becomes a
farm target and goes through every [[target]] rule (pinned platforms, `allow_emulation`, tags,
files). Farm-only settings for a bake target go in
`[bake.target.<name>]`, by the target's resolved name. Bad bake files, unknown targets and
broken rules raise `ConfigError` (exit 2) naming the bake file and target.

What a bake target may say and farm does not take over (`output`, `no-cache`, `pull`, named
`contexts`, `dockerfile-inline`, a remote context) is refused or ignored as documented in
docs/farm-file.md: farm always pushes by digest and moves the tags itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from buildkit_farm.errors import ConfigError, ConfigIssue
from buildkit_farm.farmfile import load, rules
from buildkit_farm.farmfile.model import BakeConfig, BakeTargetConfig, FarmConfig, TargetConfig
from buildkit_farm.farmfile.section import Section
from buildkit_farm.farmfile.targets import target_spec
from buildkit_farm.farmfile.words import quote

_REFUSED = {
    "dockerfile-inline": "write the Dockerfile to a file and name it with dockerfile",
    "contexts": "named build contexts are not supported by farm; copy what you need into the context",
}
_IGNORED = ("output", "no-cache", "pull", "description", "call", "entitlements", "network", "shm-size", "ulimits")


@dataclass(frozen=True)
class Origin:
    """Where a farm target came from: the bake files and the bake target's resolved name."""

    files: tuple[str, ...]
    bake_target: str

    def describe(self) -> str:
        return f'{", ".join(self.files)} target "{self.bake_target}"'


@dataclass(frozen=True)
class Expanded:
    """The farm file with its bake targets appended, and where each came from."""

    config: FarmConfig
    origins: Mapping[str, Origin]


def expand(config: FarmConfig, printed: Mapping[str, Any]) -> Expanded:
    """`config` with the targets of its `[bake]` files after its own [[target]]s (pure).

    `printed`: what `docker buildx bake --print` resolved the bake files to (`read_printed`);
    running it is the caller's step, through the process door. Raises ConfigError.
    """
    if config.bake is None:
        return Expanded(config, {})
    base = config.file.parent
    bake = config.bake
    shown = _shown(bake, base)
    raws, issues = to_targets(printed, bake)
    label_file = ", ".join(shown)
    origin = {name: Origin(shown, name) for name, _ in raws}
    own_names = {t.name for t in config.targets}
    tag_owner = {tag: t.name for t in config.targets for tag in t.tags}
    pinned = config.pinned_platforms()
    targets: list[TargetConfig] = []
    for name, raw in raws:
        section = Section(f"bake target {quote(name)}", raw)
        if name in own_names:
            issues.append(
                ConfigIssue(section.label, f"has the name of a [[target]] of {config.file.name}", "rename one of them")
            )
            continue
        section.model = load.validate_section(TargetConfig, section, base, issues)
        if section.model is None:
            continue
        rules.check_target(section, pinned, tag_owner, issues)
        targets.append(load.complete_target(section.model))
    if issues:
        raise ConfigError(file=label_file, issues=issues)
    pools = config.pools()
    specs = tuple(target_spec(t, pools, origin=origin[t.name].describe()) for t in targets)
    expanded = config.model_copy(update={"targets": tuple(config.targets) + tuple(targets)})
    desired = config.desired
    object.__setattr__(expanded, "_desired", replace(desired, targets=desired.targets + specs))
    return Expanded(expanded, origin)


def print_args(bake: BakeConfig, *, base: Path) -> list[str]:
    """The `buildx bake --print` arguments that resolve the bake files (run in `base`, the farm
    file's folder); a bake file that does not exist raises ConfigError first."""
    shown = _shown(bake, base)
    missing = [
        ConfigIssue(
            f"bake.files[{i}]", f"{shown[i]} does not exist", "give the bake file's path, relative to the farm file"
        )
        for i, path in enumerate(bake.files)
        if not path.is_file()
    ]
    if missing:
        raise ConfigError(file=", ".join(shown), issues=missing)
    args = ["buildx", "bake", "--print"]
    for path in bake.files:
        args += ["--file", str(path)]
    return [*args, *bake.targets]


def read_printed(returncode: int, stdout: str, stderr: str, bake: BakeConfig, *, base: Path) -> dict[str, Any]:
    """What `buildx bake --print` printed, as JSON; its failure as a ConfigError naming the bake file."""
    shown = _shown(bake, base)
    if returncode != 0:
        raise ConfigError(file=", ".join(shown), issues=[_print_issue(stderr, bake)])
    try:
        data = json.loads(stdout)
    except ValueError as err:
        raise ConfigError(
            file=", ".join(shown), issues=[ConfigIssue("", f"buildx bake --print gave no JSON: {err}")]
        ) from None
    return data if isinstance(data, dict) else {}


def to_targets(
    definition: Mapping[str, Any], bake: BakeConfig
) -> tuple[list[tuple[str, dict[str, Any]]], list[ConfigIssue]]:
    """Each resolved bake target as a [[target]] table (pure), with the issues of what farm refuses."""
    issues: list[ConfigIssue] = []
    found = definition.get("target") or {}
    for name in bake.target:
        if name not in found:
            issues.append(
                ConfigIssue(
                    f"bake.target.{quote(name)}",
                    "is not a target of the bake files (as resolved for bake.targets)",
                    f"resolved targets: {', '.join(sorted(found)) or 'none'}",
                )
            )
    out = []
    for name, spec in found.items():
        raw = _target_table(name, spec or {}, bake.target.get(name), issues)
        if raw is not None:
            out.append((name, raw))
    return out, issues


def _target_table(
    name: str, spec: Mapping[str, Any], settings: BakeTargetConfig | None, issues: list[ConfigIssue]
) -> dict[str, Any] | None:
    label = f"bake target {quote(name)}"
    for key, hint in _REFUSED.items():
        if spec.get(key):
            issues.append(ConfigIssue(f"{label}.{key}", "is not supported by farm", hint))
    context = str(spec.get("context") or ".")
    if "://" in context or context.startswith("git@"):
        issues.append(
            ConfigIssue(f"{label}.context", f"{context} is not a folder", "farm builds from a local context folder")
        )
        return None
    dockerfile = Path(str(spec.get("dockerfile") or "Dockerfile"))
    raw: dict[str, Any] = {
        "name": name,
        "context": context,
        # bake takes dockerfile relative to the context
        "dockerfile": str(dockerfile if dockerfile.is_absolute() else Path(context) / dockerfile),
        "platforms": list(spec.get("platforms") or []),
        "tags": list(spec.get("tags") or []),
        "args": {k: str(v) for k, v in (spec.get("args") or {}).items() if v is not None},
        "labels": {k: str(v) for k, v in (spec.get("labels") or {}).items() if v is not None},
        "cache_from": list(_strings(spec.get("cache-from"))),
        "cache_to": list(_strings(spec.get("cache-to"))),
        "ssh": list(_strings(spec.get("ssh"))),
        "secrets": [s for s in (_secret(item) for item in _strings(spec.get("secret"))) if s],
    }
    if spec.get("target"):
        raw["target"] = spec["target"]
    for attest in _strings(spec.get("attest")):
        kind = dict(part.split("=", 1) for part in attest.split(",") if "=" in part).get("type")
        if kind in ("provenance", "sbom"):
            raw[kind] = "disabled=true" not in attest
    if settings is not None:
        if settings.tags:
            raw["tags"] = list(settings.tags)
        raw["sources"] = list(settings.sources)
        raw["variant_tags"] = settings.variant_tags
        raw["allow_emulation"] = list(settings.allow_emulation)
        for key in ("provenance", "sbom"):
            if getattr(settings, key) is not None:
                raw[key] = getattr(settings, key)
        ids = {s.id for s in settings.secrets}
        raw["secrets"] = [s for s in raw["secrets"] if s["id"] not in ids] + [
            {k: str(v) for k, v in s.model_dump(exclude_none=True).items()} for s in settings.secrets
        ]
    return raw


def _strings(value: Any) -> Sequence[str]:
    if value is None:
        return ()
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _secret(spec: str) -> dict[str, str] | None:
    fields = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
    if "id" not in fields:
        return None
    if fields.get("type") == "env" or "env" in fields:
        return {"id": fields["id"], "env": fields.get("env") or fields["id"].upper()}
    if "src" in fields or "source" in fields:
        return {"id": fields["id"], "src": fields.get("src") or fields["source"]}
    return {"id": fields["id"], "env": fields["id"].upper()}


def _print_issue(stderr: str, bake: BakeConfig) -> ConfigIssue:
    """The bake error as one issue: buildx's own message (file:line for syntax errors)."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    message = errors[-1] if errors else (lines[-1] if lines else "docker buildx bake --print failed")
    if "failed to find target" in message:
        return ConfigIssue(
            "bake.targets",
            message,
            f"bake.targets = {json.dumps(list(bake.targets))}: name targets or groups the bake files define",
        )
    return ConfigIssue("", message, "fix the bake file; `docker buildx bake --print` shows how bake reads it")


def _shown(bake: BakeConfig, base: Path) -> tuple[str, ...]:
    out = []
    for path in bake.files:
        try:
            out.append(str(path.relative_to(base)))
        except ValueError:
            out.append(str(path))
    return tuple(out)


def describe(expanded: Expanded) -> list[str]:
    """`farm validate`'s lines for the bake targets: where each came from."""
    return [f"  target {name} <- {origin.describe()}" for name, origin in expanded.origins.items()]
