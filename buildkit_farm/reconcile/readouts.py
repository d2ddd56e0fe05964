"""What buildx, buildkitd and buildctl print, parsed into plain values: pure, no IO."""

from __future__ import annotations

import json
from collections.abc import Mapping


def format_platform(p: Mapping) -> str:
    parts = [p.get("os") or "linux", p.get("architecture") or ""]
    if p.get("variant"):
        parts.append(p["variant"])
    return "/".join(parts)


_INSPECT_KEYS = {"status": "status", "buildkit version": "version", "buildkit": "version", "error": "error"}


def parse_buildx_inspect(text: str) -> dict[str, dict]:
    """`docker buildx inspect` text → per node: status, version, error and detected platforms."""
    nodes: dict[str, dict] = {}
    current: dict | None = None
    in_nodes = False  # the builder's own Name: and Driver: come before "Nodes:"
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep or line.startswith((" ", "\t")):
            continue  # labels and GC policy lines are indented
        key, value = key.strip().lower(), value.strip()
        if key == "nodes":
            in_nodes = True
        elif key == "name" and in_nodes:
            current = nodes.setdefault(value, {"platforms": ()})
        elif current is not None and key in _INSPECT_KEYS:
            current[_INSPECT_KEYS[key]] = value or None if key.startswith("buildkit") else value
        elif current is not None and key == "platforms":
            current["platforms"] = _inspect_platforms(value)
    return nodes


def _inspect_platforms(value: str) -> tuple[str, ...]:
    """buildx lists the platforms pinned to a node first, marked `*`, then what BuildKit
    detected less those; each pinned one goes back before the first of its architecture."""
    listed = [p.strip() for p in value.split(",") if p.strip()]
    detected = [p for p in listed if not p.endswith("*")]
    for pin in (p.rstrip("*") for p in listed if p.endswith("*")):
        # back beside its own architecture, so the native one still comes first
        same = [i for i, p in enumerate(detected) if p.split("/")[:2] == pin.split("/")[:2]]
        detected.insert(same[0] if same else len(detected), pin)
    return tuple(detected)


def parse_buildkitd_version(text: str) -> str | None:
    """`buildkitd github.com/moby/buildkit v0.13.2 <rev>` → `v0.13.2`."""
    fields = text.split()
    return fields[2] if len(fields) >= 3 else (fields[-1] if fields else None)


def parse_workers(text: str) -> tuple[str, ...]:
    """`buildctl debug workers --format '{{json .}}'` → detected platforms, in order, deduplicated."""
    text = text.strip()
    if not text:
        return ()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    workers = data if isinstance(data, list) else [data]
    out: list[str] = []
    for w in workers:
        for p in w.get("Platforms") or w.get("platforms") or ():
            s = format_platform({k.lower(): v for k, v in p.items()})
            if s not in out:
                out.append(s)
    return tuple(out)


def parse_running_builds(text: str) -> tuple[str, ...]:
    """`buildctl debug histories --format '{{json .}}'` → the builds still running, for people.

    BuildKit keeps a record per build; one without `CompletedAt` is still running. Each is
    described by its ref, when it started, and its Dockerfile target when it has one.
    """
    running = []
    for line in text.splitlines():
        try:
            record = (json.loads(line) or {}).get("record") or {}
        except (json.JSONDecodeError, AttributeError):
            continue
        if not record.get("Ref") or record.get("CompletedAt"):
            continue
        attrs = record.get("FrontendAttrs") or {}
        what = f"build {record['Ref']}"
        if attrs.get("target"):
            what += f" (target {attrs['target']})"
        started = (record.get("CreatedAt") or "")[:19].replace("T", " ")
        running.append(f"{what}, started {started} UTC" if started else what)
    return tuple(running)
