"""The words farm-file messages are made of: a quoted value, a key as TOML writes it, a type.

Every value a message shows goes through `quote`: credentials redacted (`user:pw@`,
tokens), control characters escaped (ANSI escapes, C1, bidi overrides), so a farm file
cannot write to the user's terminal.
"""

from __future__ import annotations

import json
import re
from typing import Any

from buildkit_farm.errors import printable, redact

_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*')  # needs no escaping inside double quotes
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


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
