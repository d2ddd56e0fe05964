"""Targets from bake files: the farm file's `[bake]` table, resolved by buildx itself.

`docker buildx bake --print` (run by the loader's caller through `buildkit_farm.docker`, in the
farm file's folder; this module builds its arguments and reads what it printed) resolves
variables, `inherits`, `matrix` and groups exactly as bake does; each resolved target becomes a
farm target and goes through every [[target]] rule (pinned platforms, `allow_emulation`, tags,
files). Farm-only settings for a bake target go in
`[bake.target.<name>]`, by the target's resolved name. Bad bake files, unknown targets and
broken rules raise `ConfigError` (exit 2) naming the bake file and target.

`bake --print` has two shapes: buildx < 0.20 prints cache-from, cache-to, output, secret,
ssh and attest as strings, 0.20 and later as objects; both read the same (the recorded
outputs of 0.13.1 and 0.29.1 are in tests/unit/data/buildx). What a bake target says and
farm does not carry (`no-cache`, `pull`, `network`, `annotations`, an output other than a
push, an unknown key, ...) is refused by name, never dropped: see docs/farm-file.md. Farm
always pushes by digest and moves the tags itself.
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

# A bake target key farm does not carry is refused by name when set (never dropped): key -> hint.
_REFUSED = {
    "dockerfile-inline": "write the Dockerfile to a file and name it with dockerfile",
    "contexts": "named build contexts are not supported by farm; copy what you need into the context",
    "no-cache": "remove it and run `farm build --no-cache`",
    "no-cache-filter": "remove it; `farm build --no-cache` disables the cache of the whole build",
    "pull": "remove it and run `farm build --pull`",
    "entitlements": "farm grants a build no entitlement; remove it",
    "network": "farm builds with the default network; remove it",
    "extra-hosts": "farm does not pass extra hosts to the build; remove them",
    "shm-size": "farm does not pass a /dev/shm size to the build; remove it",
    "ulimits": "farm does not pass ulimits to the build; remove them",
    "annotations": "farm does not pass annotations to the build; use labels",
    "call": 'farm builds images (call = "build"); run other calls with `docker buildx bake --call`',
}
# Set to these, a refused key asks for nothing farm would not do anyway.
_HARMLESS = {"network": ("default",), "call": ("build",)}
# Read into the [[target]] table (below), or text that does not change the build.
_CARRIED = (
    "context", "dockerfile", "platforms", "tags", "args", "labels", "target",
    "cache-from", "cache-to", "secret", "ssh", "attest", "output", "description",
)  # fmt: skip
# Outputs farm's own push by digest (then the tag moves) already gives.
_PUSHED_OUTPUTS = ("registry", "image")


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
    issues.extend(_refused_keys(label, spec))
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
        "cache_from": _entries(label, "cache-from", spec, issues),
        "cache_to": _entries(label, "cache-to", spec, issues),
        "ssh": [_ssh(item) for item in _listed(spec.get("ssh"))],
        "secrets": _secrets(label, spec, issues),
    }
    if spec.get("target"):
        raw["target"] = spec["target"]
    raw.update(_attestations(label, spec, issues))
    issues.extend(_output_issues(label, spec, raw["tags"]))
    if settings is not None:
        _apply_settings(raw, settings)
    return raw


def _refused_keys(label: str, spec: Mapping[str, Any]) -> list[ConfigIssue]:
    """A key farm does not carry, set to something that matters: named, with what to do instead."""
    out = []
    for key, value in spec.items():
        if value in (None, False, "", [], {}) or value in _HARMLESS.get(key, ()):
            continue
        if key in _REFUSED:
            out.append(ConfigIssue(f"{label}.{key}", "is not supported by farm", _REFUSED[key]))
        elif key not in _CARRIED:
            out.append(
                ConfigIssue(
                    f"{label}.{key}",
                    "is a bake setting farm does not carry to the build",
                    "remove it, or build this target with `docker buildx bake`",
                )
            )
    return out


def _apply_settings(raw: dict[str, Any], settings: BakeTargetConfig) -> None:
    """`[bake.target.<name>]` over what the bake file says."""
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


# ---------------------------------------------------------------- both shapes of `bake --print`
# buildx < 0.20 prints cache-from, cache-to, output, secret, ssh and attest as lists of
# strings ("type=registry,ref=r"); 0.20 and later as lists of objects ({"type": "registry",
# "ref": "r"}). Each reader takes both.


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, (str, Mapping)) else list(value)


def _fields(item: Any) -> dict[str, str]:
    """One entry as its attributes: "type=registry,ref=r" or {"type": "registry", "ref": "r"}."""
    if isinstance(item, Mapping):
        return {str(k): _text(v) for k, v in item.items() if v is not None}
    pairs = (part.partition("=") for part in str(item).split(",") if part)
    return {key: value for key, _, value in pairs}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


def _entries(label: str, key: str, spec: Mapping[str, Any], issues: list[ConfigIssue]) -> list[str]:
    """A cache setting as the text farm passes on, the same from either shape: `type=…` first,
    then the other attributes sorted (as buildx >= 0.20 prints them). A bare ref stays as it is."""
    out = []
    for i, item in enumerate(_listed(spec.get(key))):
        if isinstance(item, str) and ("=" not in item or '"' in item):
            out.append(item)  # a bare registry ref, or CSV quoting farm leaves to buildx
            continue
        fields = _fields(item)
        if not isinstance(item, str) and any("," in v or '"' in v for v in fields.values()):
            issues.append(
                ConfigIssue(f"{label}.{key}[{i}]", "has a value with a comma or quote, which farm cannot pass on")
            )
            continue
        ordered = {"type": fields.pop("type")} if "type" in fields else {}
        out.append(",".join(f"{k}={v}" for k, v in {**ordered, **dict(sorted(fields.items()))}.items()))
    return out


def _ssh(item: Any) -> str:
    """`default`, `id=path[,path]`; in the object form {"id": "default", "paths": [...]}."""
    if isinstance(item, str):
        return item
    ident, paths = str(item.get("id") or "default"), _listed(item.get("paths"))
    return f"{ident}={','.join(str(p) for p in paths)}" if paths else ident


def _secrets(label: str, spec: Mapping[str, Any], issues: list[ConfigIssue]) -> list[dict[str, str]]:
    out = []
    for i, item in enumerate(_listed(spec.get("secret"))):
        fields = _fields(item)
        if not fields.get("id"):
            issues.append(ConfigIssue(f"{label}.secret[{i}]", "has no id", "give the secret an id, e.g. id=npm"))
            continue
        out.append(_secret(fields))
    return out


def _secret(fields: Mapping[str, str]) -> dict[str, str]:
    if fields.get("type") == "env" or "env" in fields:
        return {"id": fields["id"], "env": fields.get("env") or fields["id"].upper()}
    if "src" in fields or "source" in fields:
        return {"id": fields["id"], "src": fields.get("src") or fields["source"]}
    return {"id": fields["id"], "env": fields["id"].upper()}


def _attestations(label: str, spec: Mapping[str, Any], issues: list[ConfigIssue]) -> dict[str, bool]:
    """`provenance` and `sbom` as farm's on/off; an attribute farm cannot pass on is refused, not lost."""
    out: dict[str, bool] = {}
    for i, item in enumerate(_listed(spec.get("attest"))):
        fields = _fields(item)
        kind = fields.pop("type", "")
        if kind not in ("provenance", "sbom"):
            issues.append(
                ConfigIssue(f"{label}.attest[{i}]", f"type={kind or '(none)'} is not an attestation farm attaches",
                            "farm attaches type=provenance and type=sbom")
            )  # fmt: skip
            continue
        disabled = fields.pop("disabled", "false").lower() == "true"
        if fields and not disabled:
            extra = ",".join(f"{k}={v}" for k, v in fields.items())
            issues.append(
                ConfigIssue(f"{label}.attest[{i}]", f"{extra} is not carried by farm (it attaches {kind} with "
                            "buildx's defaults)", f"remove {extra}, or build this target with `docker buildx bake`")
            )  # fmt: skip
        out[kind] = not disabled
    return out


def _output_issues(label: str, spec: Mapping[str, Any], tags: Sequence[str]) -> list[ConfigIssue]:
    """An output farm's push already is passes; any other is refused by name."""
    out = []
    for i, item in enumerate(_listed(spec.get("output"))):
        fields = _fields(item)
        kind = fields.get("type") or ("registry" if fields else "")
        names = [n for n in fields.get("name", "").split(",") if n] if "name" in fields else []
        pushed = fields.get("push", "true" if kind == "registry" else "") == "true"
        if kind in _PUSHED_OUTPUTS and pushed and all(n in tags for n in names):
            continue
        out.append(
            ConfigIssue(
                f"{label}.output[{i}]",
                f"{_text(item) if isinstance(item, str) else ','.join(f'{k}={v}' for k, v in fields.items())} "
                "is not what farm does (it pushes every build to the registry of its tags)",
                "remove output (farm pushes by digest and moves the tags), or build this target with "
                "`docker buildx bake`",
            )
        )
    return out


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
