"""`farm build --metadata-file FILE`: what `docker buildx build/bake --metadata-file` writes.

One target built: the keys of `buildx build --metadata-file` at the top level; several: one
object per target, as `buildx bake --metadata-file` writes them. Per target:
`containerimage.digest` (the list the tags point at), `containerimage.descriptor`
(`mediaType`, `digest`, `size`), `image.name` (the tags, comma-joined as buildx joins them),
and farm's own keys under `farm.`: `farm.platforms` (each platform's digest, node and
whether it was emulated), `farm.pushed`, `farm.outcome`. A target that did not build has
only its `farm.` keys. Pure, but for `write`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from buildkit_farm.errors import FarmError, UsageError


@dataclass(frozen=True)
class Descriptor:
    """An OCI descriptor of the list a target's tags point at (or, with --no-push, would)."""

    media_type: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class _Platform(Protocol):
    platform: str
    node: str
    emulated: bool
    digest: str | None


class _Target(Protocol):
    target: str
    tags: list[str]
    digest: str | None
    platforms: list[Any]
    outcome: Any


def document(
    reports: Sequence[_Target], descriptors: Mapping[str, Descriptor], *, pushed: bool = True
) -> dict[str, Any]:
    """The metadata file's content for these targets (`descriptors`: by target name)."""
    entries = {r.target: _entry(r, descriptors.get(r.target), pushed=pushed) for r in reports}
    if len(entries) == 1:
        return next(iter(entries.values()))
    return entries


def _entry(report: _Target, descriptor: Descriptor | None, *, pushed: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    digest = descriptor.digest if descriptor is not None else report.digest
    if digest:
        entry["containerimage.digest"] = digest
        if descriptor is not None:
            entry["containerimage.descriptor"] = descriptor.to_dict()
        if report.tags:
            entry["image.name"] = ",".join(report.tags)
    platforms: list[_Platform] = list(report.platforms)
    entry["farm.platforms"] = {
        p.platform: {"digest": p.digest, "node": p.node, "emulated": p.emulated} for p in platforms
    }
    entry["farm.pushed"] = pushed and bool(digest)
    entry["farm.outcome"] = str(getattr(report.outcome, "value", report.outcome))
    return entry


def descriptors(
    reports: Sequence[_Target],
    *,
    docker_config: str | None,
    read: Callable[..., Any] | None = None,
) -> dict[str, Descriptor]:
    """The descriptor of each published target's list, read back by digest from its registry
    (`read`: `registry.read.inspect_image` unless given). A target whose list cannot be read
    gets none: its digest is still written."""
    if read is None:
        from buildkit_farm.registry.read import inspect_image

        read = inspect_image
    out = {}
    for r in reports:
        repo = getattr(r, "repo", None)
        if not r.digest or not repo or str(getattr(r.outcome, "value", r.outcome)) != "published":
            continue
        try:
            index = read(f"{repo}@{r.digest}", docker_config=docker_config)
        except FarmError:
            continue
        out[r.target] = Descriptor(index.media_type, index.digest, index.size)
    return out


def check_path(path: Path | None) -> None:
    """`--metadata-file FILE` must be writable before anything runs (exit 2)."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--metadata-file {path} is a folder", hint="give a file path, e.g. --metadata-file meta.json")
    if not folder.is_dir():
        raise UsageError(f"--metadata-file {path}: folder {folder} does not exist", hint="create it first")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--metadata-file {path} cannot be written", hint="pick a path you can write")


def finish(path: Path | None, reports: Sequence[_Target], *, docker_config: str | None, pushed: bool) -> None:
    """After a run that built anything, failed or not: the file, when `--metadata-file` asked for it."""
    if path is not None and reports:
        write(path, document(reports, descriptors(reports, docker_config=docker_config), pushed=pushed))


def write(path: Path, data: Mapping[str, Any]) -> None:
    """Write the file whole or not at all (a reader never sees half of it)."""
    folder = path.parent if str(path.parent) else Path(".")
    with tempfile.NamedTemporaryFile("w", dir=folder, prefix=f".{path.name}.", delete=False) as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.chmod(out.name, 0o644)  # as buildx leaves it: the file holds no secret
    os.replace(out.name, path)
