"""Bounds on the farm file, checked before and right after parsing, so that any input is
refused in well under two seconds and a few tens of MB.

- Only a regular file is read (a FIFO or `/dev/zero` would hang or never end), and at most
  `MAX_FILE_BYTES` of it: a real farm file of a hundred targets is ~30 KB.
- A dotted key or table header of more than `MAX_KEY_PARTS` parts is refused before TOML
  parsing: the parser's cost grows with the square of a key's depth.
- More than `MAX_COMMAS` commas is refused before parsing too (a million-item array).
- After parsing: arrays of at most `MAX_ITEMS` items, tables of at most `MAX_KEYS` keys,
  keys of at most `MAX_KEY_CHARS` characters, nesting at most `MAX_DEPTH` deep, and no NUL
  character in any key or string (written as \u0000: no command line, label or file name can
  carry one to Docker).
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any

from buildkit_farm.errors import ConfigIssue
from buildkit_farm.farmfile.words import key_name, quote, table_labels

MAX_FILE_BYTES = 256 * 1024
MAX_KEY_PARTS = 32
MAX_ITEMS = 1000
MAX_KEYS = 1000
MAX_KEY_CHARS = 256
MAX_DEPTH = 16
MAX_COMMAS = 20_000

_NUL_HINT = "remove it: no command line, label or file name can carry a NUL to Docker"
_HINT = "a farm file lists nodes and targets; split a generated one, or generate fewer entries"
# The key part of a `key = value` line or a `[table]` header (quoted parts may hold dots).
_KEY_LINE = re.compile(r"""[ \t]*(?:\[\[?)?[ \t]*((?:[A-Za-z0-9_.\- \t]|"[^"\n]*"|'[^'\n]*')*)""", re.ASCII)


class TooBig(Exception):
    """The file breaks a bound; `issue` says which, where, and the fix."""

    def __init__(self, issue: ConfigIssue) -> None:
        super().__init__(issue.message)
        self.issue = issue


def read_bounded(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES; `TooBig` or OSError otherwise."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just after.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "Is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise TooBig(
                ConfigIssue(
                    "", f"is not a regular file ({_kind(info.st_mode)})", "pass the farm file itself, e.g. -f farm.toml"
                )
            )
        if info.st_size > MAX_FILE_BYTES:
            raise TooBig(_size_issue(info.st_size))
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:  # it grew while read
            raise TooBig(_size_issue(size))
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_text(text: str) -> ConfigIssue | None:
    """Bounds to check before parsing: size (for text given as such), encoding and key depth."""
    if len(text) > MAX_FILE_BYTES:
        return _size_issue(len(text.encode("utf-8", "replace")))
    encoding = _encoding_issue(text)
    if encoding is not None:
        return encoding
    if text.count(",") > MAX_COMMAS:  # ~7 us per array item in the parser: refuse a huge array before it
        return ConfigIssue("", f"has more than {MAX_COMMAS:,} commas: far more items than a farm file holds", _HINT)
    if text.count(".") <= MAX_KEY_PARTS:
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.count(".") <= MAX_KEY_PARTS:
            continue
        match = _KEY_LINE.match(line)
        rest = line[match.end() :].lstrip() if match else ""
        if not match or not rest.startswith(("=", "]")):
            continue  # not a key: a value or a string's line
        key = match.group(1)
        parts = len(re.sub(r'"[^"]*"|\'[^\']*\'', "x", key).split("."))
        if parts > MAX_KEY_PARTS:
            return ConfigIssue(
                "",
                f"a dotted key has {parts} parts, more than {MAX_KEY_PARTS}",
                "a farm file's keys are a few levels deep, e.g. target.args.VERSION",
                line=number,
            )
    return None


def _encoding_issue(text: str) -> ConfigIssue | None:
    """A BOM or a raw NUL: the TOML parser's "Invalid statement" would not say what to fix."""
    if text.startswith("\ufeff"):  # one more than the one the loader drops
        return ConfigIssue(
            "", "starts with two byte order marks (BOM)", "save it as UTF-8 (with one BOM or none)", line=1
        )
    at = text.find("\x00")
    if at < 0:
        return None
    line = text.count("\n", 0, at) + 1
    return ConfigIssue(
        "",
        f"contains a NUL byte at line {line}: not text",
        "remove it, or check that it is the right file: a farm file is UTF-8 text",
        line=line,
    )


def stray_bom(text: str, issue: ConfigIssue) -> ConfigIssue:
    """A syntax error at a byte order mark inside the file (files joined with `cat`) said as such."""
    lines = text.splitlines()
    if issue.line is None or not 0 < issue.line <= len(lines) or not lines[issue.line - 1].startswith("\ufeff"):
        return issue
    return ConfigIssue(
        "",
        f"a byte order mark (U+FEFF) starts line {issue.line}: files joined together?",
        "remove it: only the first line of a file may start with one",
        line=issue.line,
    )


def check_document(doc: dict[str, Any]) -> list[ConfigIssue]:
    """Bounds to check after parsing, before any validation; an issue per offending value."""
    issues: list[ConfigIssue] = []
    stack: list[tuple[str, Any, int]] = [("", doc, 0)]
    while stack and len(issues) < 20:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            issues.append(ConfigIssue(path, f"is nested more than {MAX_DEPTH} levels deep", _HINT))
            continue
        if isinstance(value, dict):
            if len(value) > MAX_KEYS:
                issues.append(ConfigIssue(path, f"has {len(value)} keys, more than {MAX_KEYS}", _HINT))
                continue
            for key, item in value.items():
                if len(key) > MAX_KEY_CHARS:
                    where = f"{path}.{quote(key[:40])}..." if path else f"{quote(key[:40])}..."
                    issues.append(ConfigIssue(where, f"a key of {len(key)} characters, more than {MAX_KEY_CHARS}"))
                    continue
                where = f"{path}.{key_name(key)}" if path else key_name(key)
                if "\x00" in key:
                    issues.append(ConfigIssue(where, "a key contains a NUL character (\\u0000)", _NUL_HINT))
                stack.append((where, item, depth + 1))
        elif isinstance(value, list):
            if len(value) > MAX_ITEMS:
                issues.append(ConfigIssue(path, f"has {len(value)} items, more than {MAX_ITEMS}", _HINT))
                continue
            labels = (
                table_labels(path, value) if path in ("node", "target") else [f"{path}[{i}]" for i in range(len(value))]
            )
            stack.extend((label, item, depth + 1) for label, item in zip(labels, value))
        elif isinstance(value, str) and "\x00" in value:
            issues.append(ConfigIssue(path, "contains a NUL character (\\u0000)", _NUL_HINT))
    return issues


def _size_issue(size: int) -> ConfigIssue:
    return ConfigIssue(
        "",
        f"is {size:,} bytes or more, over the {MAX_FILE_BYTES // 1024} KiB a farm file (or a buildkitd config) may be",
        "is it the right file? a farm file of a hundred targets is ~30 KB",
    )


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"
