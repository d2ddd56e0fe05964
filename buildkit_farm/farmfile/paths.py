"""Files and folders the farm file names: they must exist, as what they claim to be."""

from __future__ import annotations

import os
from pathlib import Path

from buildkit_farm.errors import ConfigIssue


def resolved(base: str | Path, value: str | Path) -> Path:
    """A path the farm file names, as farm reads it: relative to `base` (the file's folder), normalized."""
    return Path(os.path.normpath(os.path.join(base, value)))


def check_file(path: str, file: Path | None, issues: list[ConfigIssue], *, hint: str | None = None) -> bool:
    if file is None:
        return False
    try:
        if file.is_file():
            return True
        exists = file.exists()
    except (OSError, ValueError):
        exists = False
    if not exists:
        message = f"file not found: {file}"
    else:
        message = f"{file} is a folder, not a file" if file.is_dir() else f"{file} is not a regular file"
    issues.append(ConfigIssue(path, message, hint or "paths are relative to the farm file's folder"))
    return False


def check_dir(path: str, folder: Path, issues: list[ConfigIssue]) -> bool:
    try:
        if folder.is_dir():
            return True
        exists = folder.exists()
    except (OSError, ValueError):
        exists = False
    message = f"{folder} is a file, not a folder" if exists else f"folder not found: {folder}"
    issues.append(ConfigIssue(path, message, "the build context is a folder, relative to the farm file's folder"))
    return False
