"""The command line's overrides of a target, as buildx users' fingers type them (pure, no IO).

- `--set TARGET.KEY=VALUE`, as `docker buildx bake --set` has it: TARGET is a name or a
  pattern (`*`, `app-*`, path.Match syntax); KEY is `platform` (a comma list), `tags`,
  `cache-from`, `cache-to` (repeat the flag for several values; `+=` appends to the file's),
  `args.NAME`, `labels.NAME`, `target`, `no-cache`, `pull` (a bare `app.no-cache` means true).
- `--platform P[,P]`: a subset of each target's platforms; a platform a target lacks is
  an input error naming it.
- `--build-arg KEY` without a value takes it from the environment (as buildx does; unset:
  the Dockerfile's default applies).

A mistake raises UsageError (exit 2) before anything runs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from buildkit_farm.errors import UsageError
from buildkit_farm.farmfile import platforms as platform_names

LIST_KEYS = ("platform", "tags", "cache-from", "cache-to")
MAP_KEYS = ("args", "labels")
SCALAR_KEYS = ("target",)
BOOL_KEYS = ("no-cache", "pull")
KEYS = (*LIST_KEYS, *(f"{k}.NAME" for k in MAP_KEYS), *SCALAR_KEYS, *BOOL_KEYS)
_TRUE = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class SetOverride:
    """One `--set PATTERN.KEY[.NAME]=VALUE` (or `+=`)."""

    pattern: str
    key: str
    name: str | None  # args.NAME / labels.NAME
    value: str
    append: bool = False  # `+=`: add to the file's list instead of replacing it
    text: str = ""  # the flag as typed, for messages

    def matches(self, target: str) -> bool:
        return fnmatch.fnmatchcase(target, self.pattern)


@dataclass(frozen=True)
class TargetOverrides:
    """What the command line changes in one target; None / empty: as the farm file says."""

    platforms: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    cache_from: tuple[str, ...] | None = None
    cache_to: tuple[str, ...] | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    stage: str | None = None
    no_cache: bool | None = None
    pull: bool | None = None


def parse_sets(values: Iterable[str]) -> tuple[SetOverride, ...]:
    """Every `--set` value, checked: pattern, a key farm can override, a value."""
    return tuple(_parse_set(text) for text in values)


def _parse_set(text: str) -> SetOverride:
    left, eq, value = text.partition("=")
    append = eq == "=" and left.endswith("+")
    left = left.removesuffix("+") if append else left
    pattern, dot, key = left.partition(".")
    key, _, name = key.partition(".") if key.split(".", 1)[0] in MAP_KEYS else (key, "", "")
    hint = f"--set TARGET.KEY=VALUE with KEY one of {', '.join(KEYS)} (e.g. --set '*.platform=linux/arm64')"
    if not pattern or not dot or not key:
        raise UsageError(f'--set "{text}" is not TARGET.KEY=VALUE', hint=hint)
    if key not in (*LIST_KEYS, *MAP_KEYS, *SCALAR_KEYS, *BOOL_KEYS):
        raise UsageError(f'--set "{text}": farm does not override "{key}" from the command line', hint=hint)
    if key in MAP_KEYS and not name:
        raise UsageError(f'--set "{text}": {key} needs a name, e.g. {pattern}.{key}.NAME=VALUE', hint=hint)
    if append and key not in LIST_KEYS:
        raise UsageError(f'--set "{text}": += appends to a list ({", ".join(LIST_KEYS)})', hint=hint)
    if not eq:
        if key not in BOOL_KEYS:
            raise UsageError(f'--set "{text}" has no value', hint=hint)
        value = "true"
    if key in BOOL_KEYS and value.lower() not in _TRUE:
        raise UsageError(f'--set "{text}": {key} is true or false', hint=hint)
    return SetOverride(pattern, key, name or None, value, append, text)


def overrides_for(
    target: str, sets: Sequence[SetOverride], *, file_values: Mapping[str, Sequence[str]] | None = None
) -> TargetOverrides:
    """The overrides of `target`, in flag order: list keys accumulate over repeated flags
    (`+=` starts from the file's list in `file_values`), the rest: the last flag wins."""
    lists: dict[str, list[str]] = {}
    maps: dict[str, dict[str, str]] = {"args": {}, "labels": {}}
    scalars: dict[str, str] = {}
    for item in (s for s in sets if s.matches(target)):
        if item.key in LIST_KEYS:
            if item.key not in lists:
                lists[item.key] = list((file_values or {}).get(item.key, ())) if item.append else []
            lists[item.key] += _list_value(item)
        elif item.key in MAP_KEYS:
            maps[item.key][item.name or ""] = item.value
        else:
            scalars[item.key] = item.value

    def listed(key: str) -> tuple[str, ...] | None:
        return tuple(dict.fromkeys(lists[key])) if key in lists else None

    def flag(key: str) -> bool | None:
        return _TRUE[scalars[key].lower()] if key in scalars else None

    return TargetOverrides(
        platforms=listed("platform"),
        tags=listed("tags"),
        cache_from=listed("cache-from"),
        cache_to=listed("cache-to"),
        args=maps["args"],
        labels=maps["labels"],
        stage=scalars.get("target"),
        no_cache=flag("no-cache"),
        pull=flag("pull"),
    )


def _list_value(item: SetOverride) -> list[str]:
    if item.key != "platform":  # one value per flag, as bake: a tag or a cache spec may hold commas
        return [item.value] if item.value else []
    try:
        return [platform_names.normalise(p.strip()) for p in item.value.split(",") if p.strip()]
    except platform_names.PlatformError as err:
        raise UsageError(f'--set "{item.text}": {err}') from None


def unmatched(sets: Sequence[SetOverride], targets: Sequence[str]) -> None:
    """A --set whose pattern names none of the selected targets is an input error (as bake's)."""
    for item in sets:
        if not any(item.matches(t) for t in targets):
            raise UsageError(
                f'--set "{item.text}": no selected target matches "{item.pattern}"',
                hint=f"targets: {', '.join(targets) or 'none'}; use * for all of them",
            )


def parse_platforms(values: Iterable[str]) -> tuple[str, ...]:
    """`--platform P[,P]` (repeatable) as canonical platform names, aliases accepted."""
    out: list[str] = []
    for value in values:
        for word in (w.strip() for w in value.split(",")):
            if not word:
                continue
            try:
                out.append(platform_names.normalise(word))
            except platform_names.PlatformError as err:
                raise UsageError(f'--platform "{word}": {err}') from None
    return tuple(dict.fromkeys(out))


def platform_subset(target: str, platforms: Sequence[str], wanted: Sequence[str]) -> tuple[str, ...]:
    """The target's platforms that `--platform` keeps, in the target's order; a wanted
    platform the target does not build is an input error naming it."""
    if not wanted:
        return tuple(platforms)
    missing = [p for p in wanted if p not in platforms]
    if missing:
        raise UsageError(
            f'--platform {", ".join(missing)}: target "{target}" does not build '
            + ("it" if len(missing) == 1 else "them")
            + f" (it builds {', '.join(platforms) or 'nothing'})",
            hint="pick platforms of the target, or change its platforms in the farm file "
            "(or with --set TARGET.platform=...)",
        )
    return tuple(p for p in platforms if p in wanted)


def build_args(values: Iterable[str], env: Mapping[str, str]) -> dict[str, str]:
    """`--build-arg KEY=VALUE`, or a bare `KEY` whose value is taken from `env` (left out
    when `env` lacks it, as buildx does: the Dockerfile's default then applies)."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not key or key != key.strip() or any(c.isspace() for c in key):
            raise UsageError(f'--build-arg "{item}" is not KEY=VALUE or KEY', hint="e.g. --build-arg VERSION=1.0")
        if sep:
            out[key] = value
        elif key in env:
            out[key] = env[key]
    return out
