"""The words the farm file's messages are made of: quoted names, key paths, TOML types.

Every value a message shows goes through `quote` or `short`: credentials redacted
(`user:pw@`, tokens), control characters escaped (ANSI escapes, C1, bidi overrides), so a
farm file cannot write to the user's terminal.
"""

from __future__ import annotations

import json
import re
from typing import Any

from buildkit_farm.errors import ConfigIssue, printable, redact

_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*')  # needs no escaping inside double quotes
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)

_TOML_POSITION = re.compile(r"\(at line ([0-9]+), column ([0-9]+)\)")


def syntax_issue(err: Exception) -> ConfigIssue:
    text = str(err)
    line = getattr(err, "lineno", None)
    column = getattr(err, "colno", None)
    match = _TOML_POSITION.search(text)
    if match:
        line, column = int(match[1]), int(match[2])
        text = text[: match.start()].strip()
    reason = getattr(err, "msg", None) or text
    where = f" (at line {line}, column {column})" if line else ""
    return ConfigIssue(path="", message=f"TOML syntax error: {reason}{where}", line=line)


def table_label(kind: str, index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    if isinstance(name, str) and name:
        return f"{kind} {quote(name)}"
    return f"{kind}[{index}]"


def table_labels(kind: str, items: list[Any]) -> list[str]:
    """The labels of an array of tables; a repeated name falls back to `kind[index]`."""
    labels: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        label = table_label(kind, index, item)
        label = f"{kind}[{index}]" if label in seen else label
        seen.add(label)
        labels.append(label)
    return labels


def allowed_hint(key: str, allowed: tuple[str, ...]) -> str:
    import difflib  # only when a key is unknown

    close = difflib.get_close_matches(key, allowed, n=1)
    suggestion = f'did you mean "{close[0]}"? ' if close else ""
    return f"{suggestion}allowed: {', '.join(allowed)}"


def key_name(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else quote(key)


def quote(text: str) -> str:
    """A name or value in double quotes, escaped as TOML and JSON escape it; credentials
    (`user:pw@`, tokens) redacted and every other non-printable character escaped."""
    text = redact(text)
    if _PLAIN.fullmatch(text) and text.isprintable():
        return f'"{text}"'
    return printable(json.dumps(text, ensure_ascii=False))


def short(value: Any) -> str:
    if isinstance(value, str):
        value = redact(value)  # before cutting: a cut URL would hide its password from redact()
        return quote(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return toml_type(value)


def toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return "a date/time" if value is not None else "nothing"
