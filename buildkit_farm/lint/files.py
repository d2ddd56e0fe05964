"""Which Dockerfiles `farm lint` reads, and what each is built for: paths and folders from the
command line, or a farm file's targets. Reading is bounded: only regular files, at most
`MAX_BYTES`, so a FIFO or a huge file cannot hang or swamp lint; one found in a folder is
skipped with a note, one named on the command line is bad input (exit 2).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_farm import encoding
from buildkit_farm.errors import UsageError
from buildkit_farm.lint.findings import shown
from buildkit_farm.lint.names import parse_platform


@dataclass(frozen=True)
class Subject:
    """One Dockerfile to lint, and what it is built for."""

    path: Path
    platform: str | None = None  # one platform's Dockerfile (a farm target's `dockerfiles` key)
    platforms: tuple[str, ...] = ()  # what a multi-arch Dockerfile is built for
    build_args: tuple[tuple[str, str], ...] = ()
    origin: str = ""  # 'target "app"', or "" for a path given on the command line
    found: bool = False  # found in a folder: if it can't be read, skip it with a note (else exit 2)


MAX_BYTES = 1024 * 1024  # a Dockerfile is a few KB; a bigger file is not one a build would take


_DOCKERFILE_NAME = re.compile(r"^(?:dockerfile|containerfile)(?:[._-].+)?$|.+\.(?:dockerfile|containerfile)$", re.I)
_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "venv"})


def find_dockerfiles(folder: Path) -> list[Path]:
    """Every Dockerfile under `folder` (Dockerfile, Dockerfile.*, *.Dockerfile), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        found += [Path(root) / f for f in sorted(files) if is_dockerfile_name(f)]
    return found


# Files named like Dockerfiles that are something else (code, docs, templates, config).
_NOT_DOCKERFILES = frozenset(
    "dockerignore rego cue hcl nix patch diff md rst"
    " txt py toml json yml yaml ini cfg sh ps1 go rs js ts lock bak orig swp "
    "j2 jinja tmpl tpl template in html xml".split()
)


def is_dockerfile_name(name: str) -> bool:
    """Dockerfile, Dockerfile.linux-arm64, app.Dockerfile, Containerfile; not dockerfile.py."""
    if not _DOCKERFILE_NAME.match(name):
        return False
    lower = name.lower()
    if lower.endswith((".dockerfile", ".containerfile")) or "." not in lower:
        return True
    return lower.rsplit(".", 1)[1] not in _NOT_DOCKERFILES


def subjects_for_paths(paths: Sequence[str], *, platforms: Sequence[str] = ()) -> list[Subject]:
    """Subjects for files and folders given on the command line."""
    subjects = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files = find_dockerfiles(path)
            if not files:
                raise UsageError(
                    f"no Dockerfile in folder {text}",
                    hint="Dockerfiles are named Dockerfile, Dockerfile.* or *.Dockerfile",
                )
            subjects += [Subject(f, platforms=tuple(platforms), found=True) for f in files]
        elif path.exists():  # a FIFO or a device is refused when read, without blocking
            subjects.append(Subject(path, platforms=tuple(platforms)))
        else:
            raise UsageError(f"no such file or folder: {shown(text)}")
    return subjects


def subjects_for_targets(config: Any, names: Sequence[str] = ()) -> list[Subject]:
    """Subjects for a farm file's targets (all of them when `names` is empty)."""
    targets = {t.name: t for t in config.targets}
    unknown = [n for n in names if n not in targets]
    if unknown:
        known = ", ".join(targets) or "none"
        raise UsageError(
            f'no file, folder or target named "{unknown[0]}" (targets in {config.file}: {known})',
            hint="give a Dockerfile, a folder, or a target name of the farm file (-f)",
        )
    subjects = []
    for name in names or list(targets):
        target = targets[name]
        args = tuple(sorted(target.args.items()))
        origin = f'target "{name}"'
        for platform, path in sorted(target.dockerfiles.items()):
            subjects.append(Subject(Path(path), platform=platform, build_args=args, origin=origin))
        if target.dockerfile is not None or not (target.dockerfiles or target.sources):
            path = Path(target.dockerfile) if target.dockerfile else Path(target.context) / "Dockerfile"
            subjects.append(Subject(path, platforms=tuple(target.platforms), build_args=args, origin=origin))
    for subject in subjects:
        if not subject.path.is_file():
            raise UsageError(
                f"{subject.origin}: Dockerfile {subject.path} not found", hint=f"fix the path in {config.file}"
            )
    return subjects


def collect_subjects(args: Sequence[str], *, farm_file: Path, platforms: Sequence[str] = ()) -> list[Subject]:
    """What `farm lint ARGS` lints: existing files and folders as paths, other words as targets
    of the farm file; every target when there are no ARGS."""
    for platform in platforms:
        parse_platform(platform, "--platform")  # refuse an unknown one before anything else
    paths = [a for a in args if Path(a).exists()]
    names = [a for a in args if not Path(a).exists()]
    subjects = subjects_for_paths(paths, platforms=platforms)
    if names and not Path(farm_file).exists():
        raise UsageError(
            f"no such file or folder: {names[0]}",
            hint=f"nor a target: there is no farm file {farm_file} (-f) to look it up in",
        )
    if names or not args:
        from buildkit_farm.farmfile.load import load_config

        subjects += subjects_for_targets(load_config(farm_file), names)
    return subjects


def read_dockerfile(path: Path) -> str:
    """The Dockerfile's text; UsageError when it can't be read, is not a regular file (a FIFO
    would block the read forever), is over MAX_BYTES, or is UTF-16/UTF-32 text or an archive."""
    name = shown(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as err:
        raise UsageError(f"cannot read {name}: {err.strerror or err}") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else ""
            raise UsageError(
                f"{name} is not a regular file{f' ({kind})' if kind else ''}", hint="lint reads only regular files"
            )
        try:
            data = handle.read(MAX_BYTES + 1)
        except OSError as err:
            raise UsageError(f"cannot read {name}: {err.strerror or err}") from None
    if len(data) > MAX_BYTES:
        raise UsageError(
            f"{name} is over {MAX_BYTES // 1024} KiB, more than any Dockerfile", hint="is it really a Dockerfile?"
        )
    foreign = encoding.sniff(data)
    if foreign is not None:  # BuildKit reads a Dockerfile as UTF-8: it would refuse line 1
        raise UsageError(f"{name} {foreign.describe()}", hint=foreign.hint(path.name))
    # Other bytes that are not UTF-8 (a Latin-1 comment) BuildKit passes through: so does lint.
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")


def display_path(path: Path) -> str:
    """The path relative to the current folder when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
