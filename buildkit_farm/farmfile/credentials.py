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
        children: list[tuple[str, Any, int]] = []
        if isinstance(value, dict):
            for key, item in value.items():
                container = isinstance(item, (dict, list))
                suspect = not container and (CREDENTIAL_KEY.search(key) is not None or credential_in(key) is not None)
                in_value = credential_in(item) if isinstance(item, str) and not suspect else None
                if not (container or suspect or in_value):
                    continue  # most keys: no path to build
                path = f"{prefix}.{key_name(key)}" if prefix else key_name(key)
                if suspect or in_value:
                    found.add(path)
                    issues.append(ConfigIssue(path, in_value or "looks like a credential", CREDENTIAL_HINT))
                else:
                    children.append((path, item, depth + 1))
        elif isinstance(value, list):
            labels = (
                table_labels(prefix, value)
                if prefix in ("node", "target")
                else [f"{prefix}[{i}]" for i in range(len(value))]
            )
            for label, item in zip(labels, value):
                if isinstance(item, (dict, list)):
                    children.append((label, item, depth + 1))
                elif isinstance(item, str) and credential_in(item):
                    found.add(label)
                    issues.append(ConfigIssue(label, credential_in(item) or "", CREDENTIAL_HINT))
        stack.extend(reversed(children))
    return found
