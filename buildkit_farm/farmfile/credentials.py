"""Credentials never belong in a committed farm file: keys and values that look like one.

A key named like a password or token, or a value that looks like a token, a private key or
a URL with a password (`values.credential_in`), is refused wherever it stands; the value is
never shown, and the hint says how to pass secrets by reference.
"""

from __future__ import annotations

import re
from typing import Any

from buildkit_farm.errors import ConfigIssue
from buildkit_farm.farmfile.values import credential_in
from buildkit_farm.farmfile.words import key_name, table_labels

CREDENTIAL_KEY = re.compile(
    r"(?:password|passwd|passphrase|token|(?:^|[-_.])(?:pass|pwd|secret|secret[-_]?key|api[-_]?key"
    r"|access[-_]?key|private[-_]?key|credentials?|auth|auth[-_]?key|client[-_]?secret))$",
    re.IGNORECASE,
)
CREDENTIAL_HINT = (
    "farm files are committed: never put credentials in them; log in with `docker login`, "
    "or pass build secrets by reference with [[target.secrets]] (env or src)"
)


def credential_issues(doc: dict[str, Any], issues: list[ConfigIssue]) -> set[str]:
    """Flag every key or string value anywhere that looks like a credential (`values.credential_in`),
    in file order, never showing the value; returns their paths."""
    found: set[str] = set()
    stack: list[tuple[str, Any, int]] = [("", doc, 0)]
    while stack:
        prefix, value, depth = stack.pop()
        if depth > 50:
            continue
        if isinstance(value, dict):
            children = _table_children(prefix, value, found, issues)
        elif isinstance(value, list):
            children = _array_children(prefix, value, found, issues)
        else:
            children = []
        stack.extend((path, item, depth + 1) for path, item in reversed(children))
    return found


def _flag(path: str, message: str, found: set[str], issues: list[ConfigIssue]) -> None:
    found.add(path)
    issues.append(ConfigIssue(path, message, CREDENTIAL_HINT))


def _table_children(prefix: str, table: dict, found: set[str], issues: list[ConfigIssue]) -> list[tuple[str, Any]]:
    """Flag a table's suspect keys and values; return its sub-tables and arrays, to walk next."""
    children = []
    for key, item in table.items():
        container = isinstance(item, (dict, list))
        suspect = not container and (CREDENTIAL_KEY.search(key) is not None or credential_in(key) is not None)
        in_value = credential_in(item) if isinstance(item, str) and not suspect else None
        if not (container or suspect or in_value):
            continue  # most keys: no path to build
        path = f"{prefix}.{key_name(key)}" if prefix else key_name(key)
        if suspect or in_value:
            _flag(path, in_value or "looks like a credential", found, issues)
        else:
            children.append((path, item))
    return children


def _array_children(prefix: str, array: list, found: set[str], issues: list[ConfigIssue]) -> list[tuple[str, Any]]:
    """Flag an array's suspect strings; return its tables and arrays, to walk next."""
    labels = (
        table_labels(prefix, array) if prefix in ("node", "target") else [f"{prefix}[{i}]" for i in range(len(array))]
    )
    children = []
    for label, item in zip(labels, array):
        if isinstance(item, (dict, list)):
            children.append((label, item))
        elif isinstance(item, str) and credential_in(item):
            _flag(label, credential_in(item) or "", found, issues)
    return children
