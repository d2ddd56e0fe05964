"""pydantic's validation errors as the farm file's issues: the file's own key path, then what
is wrong in the words the rest of the messages use, then the fix.
"""

# No `from __future__ import annotations` here (see model.py).
from typing import Any

from pydantic import BaseModel

from buildkit_farm.errors import ConfigIssue
from buildkit_farm.farmfile.model import FarmConfig
from buildkit_farm.farmfile.words import allowed_hint, key_name, short, toml_type


def issue_of(label: str, model: type[BaseModel], error: dict[str, Any], raw: Any) -> ConfigIssue:
    """Turn one pydantic error into a ConfigIssue with the file's own key path."""
    loc = _file_keys(raw, error)
    path = label + "".join(_key_part(part) for part in loc)
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "farm":
        return ConfigIssue(path, ctx.get("message", error["msg"]), ctx.get("hint") or None)
    if kind == "missing":
        return ConfigIssue(path, "is required", _required_hint(loc))
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        parent = _model_at(model, loc[:-1])
        allowed = tuple(parent.model_fields) if parent is not None else ()
        if parent is FarmConfig:
            allowed = ("builder", "node", "target", "bake")
        return ConfigIssue(path, "unknown key", allowed_hint(key, allowed) if allowed else None)
    if kind == "literal_error":
        return ConfigIssue(path, f"must be one of {ctx.get('expected', '')}, not {short(value)}")
    if kind in ("greater_than_equal", "greater_than"):
        limit = ctx.get("ge", ctx.get("gt"))
        return ConfigIssue(path, f"must be {'>=' if kind == 'greater_than_equal' else '>'} {limit}, not {short(value)}")
    expected = {
        "string_type": "a string",
        "int_type": "an integer",
        "bool_type": "true or false",
        "dict_type": "a table",
        "model_type": "a table",
        "model_attributes_type": "a table",
        "tuple_type": "an array",
        "list_type": "an array",
        "path_type": "a path (string)",
    }.get(kind)
    if expected:
        return ConfigIssue(path, f"expected {expected}, got {toml_type(value)}")
    if kind == "value_error":
        return ConfigIssue(path, str(error["msg"]).removeprefix("Value error, "))
    message = str(error["msg"])
    return ConfigIssue(path, message[:1].lower() + message[1:])


def _file_keys(raw: Any, error: dict[str, Any]) -> list[Any]:
    """The keys and indices of an error's loc that are in the file, read by walking the table.

    pydantic's loc mixes the file's keys with its own words: a union member's tag ("str",
    "function-after[...]") and "[key]" for an error in a dict's key. A key may be spelled like
    any of those ("str", "a[0]"), so a part is told by where it stands in the data, not by its
    spelling: it is the file's when the table there holds it (or it is the missing key).
    """
    loc, kind = error["loc"], error["type"]
    keys: list[Any] = []
    current = raw
    for at, part in enumerate(loc):
        last = at == len(loc) - 1
        if isinstance(current, dict) and isinstance(part, str) and (part in current or (last and kind == "missing")):
            if part == "[key]" and last and keys and error.get("input") == keys[-1] and kind != "extra_forbidden":
                break  # the error is in the key just named (a value that is a table holding "[key]")
            keys.append(part)
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            keys.append(part)
            current = current[part]
    return keys


def _model_at(model: type[BaseModel], loc: list[Any]) -> type[BaseModel] | None:
    """The pydantic model at a location inside `model` (for the allowed keys of a table)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        annotation = fields[part].annotation
        current = _model_in(annotation)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _required_hint(loc: list[Any]) -> str | None:
    last = loc[-1] if loc else ""
    return {
        "name": "every table needs a name",
        "id": "a secret needs the id the Dockerfile mounts it by (RUN --mount=type=secret,id=...)",
    }.get(str(last))


def _key_part(part: Any) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    return "." + key_name(str(part))
