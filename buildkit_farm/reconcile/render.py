"""Text for people and JSON for machines: plans (terraform-like) and status tables."""

from __future__ import annotations

import json
from collections import Counter

from buildkit_farm.errors import shown
from buildkit_farm.reconcile.pools import Pool
from buildkit_farm.reconcile.status import NodeStatus
from buildkit_farm.reconcile.steps import Action, Plan

_WORDS = {
    Action.CREATE: "to create",
    Action.UPDATE: "to update",
    Action.REPLACE: "to replace",
    Action.REMOVE: "to remove",
    Action.NOOP: "unchanged",
}


def plan_text(plan: Plan, *, title: str | None = None) -> str:
    """One line per step (`+ ~ -/+ -`, and `=` for unchanged with its reason), then a summary."""
    lines = [title or f'Farm builder "{plan.builder}" (driver {plan.driver}):']
    width = max((len(f"{s.kind} {s.name}") for s in plan.steps), default=0)
    for s in plan.steps:
        what = f"{s.kind} {s.name}".ljust(width)
        lines.append(f"  {s.action.symbol:>3} {what}  {s.reason}")
        for field, old, new in s.changes:
            arrow = f"{old} -> {new}" if old else new
            lines.append(f"{'':>6}{'':{width}}    {field}: {arrow}")
    lines.append("")
    lines.append(plan_summary(plan))
    # What Docker reported (hosts, errors) is shown as the user may see it: no credential, no control character.
    return shown("\n".join(lines), keep="\n")


def plan_summary(plan: Plan) -> str:
    if plan.converged:
        return f"No changes: the farm matches the file ({len(plan.steps)} things checked)."
    counts = Counter(s.action for s in plan.steps)
    parts = [f"{counts.get(a, 0)} {_WORDS[a]}" for a in (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.REMOVE)]
    summary = f"Plan: {', '.join(parts)}, {counts.get(Action.NOOP, 0)} unchanged."
    if local_only(plan):
        summary += " Nothing to do on the nodes: only this runner's own contexts and builder are made."
    return summary


def local_only(plan: Plan) -> bool:
    """Whether every change is this runner's own: contexts and builder files created, no BuildKit touched
    (a fresh runner on a converged farm)."""
    return (
        bool(plan.changes)
        and all(s.kind in ("context", "builder", "node") and s.action is Action.CREATE for s in plan.changes)
        and any(s.kind == "buildkit" for s in plan.steps)
    )


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2)


def detected_text(n: NodeStatus) -> str:
    """Detected platforms, emulated ones marked with `(emulated)`."""
    if not n.detected:
        return "-"
    return ", ".join(p + (" (emulated)" if p in n.emulated else "") for p in n.detected)


def status_text(builder: str, nodes: tuple[NodeStatus, ...], pools: tuple[Pool, ...] = ()) -> str:
    header = ("NODE", "ENDPOINT", "STATUS", "BUILDKIT", "PINNED", "DETECTED")
    rows = [
        (
            n.name,
            n.endpoint or n.context,
            f"{n.status} (drained)" if n.drained else n.status,
            n.version or "-",
            ", ".join(n.pinned) or "(detected)",
            detected_text(n),
        )
        for n in nodes
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    out = [f'Builder "{builder}":']
    for r in [header, *rows]:
        out.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    for n in nodes:
        if n.error and n.status != "running":
            out.append(f"  {n.name}: {n.error}")
        if n.drained:
            out.append(f"  {n.name}: drained {n.drained}; takes no new builds (`farm undrain {n.name}`)")
    out.extend(pools_text(pools))
    return shown("\n".join(out), keep="\n")


def pools_text(pools: tuple[Pool, ...]) -> list[str]:
    """Each platform of a farm with pools: the node building it now, the standbys, the down ones."""
    if not any(len(p.members) > 1 for p in pools):
        return []
    header = ("PLATFORM", "ACTIVE", "STANDBY", "DOWN")
    rows = [
        (p.platform, p.active or "(none: no healthy node)", ", ".join(p.standby) or "-", ", ".join(p.down) or "-")
        for p in pools
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return ["Pools (the first healthy node of each builds it):"] + [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in [header, *rows]
    ]


def status_json(
    builder: str,
    nodes: tuple[NodeStatus, ...],
    *,
    docker_config: str | None = None,
    pools: tuple[Pool, ...] = (),
    warnings: tuple[str, ...] = (),
) -> str:
    data: dict = {"builder": builder, "nodes": [n.to_dict() for n in nodes]}
    if pools:
        data["pools"] = [p.to_dict() for p in pools]
    if warnings:
        data["warnings"] = list(warnings)
    if docker_config:
        data["docker_config"] = docker_config
    return json.dumps(data, indent=2)
