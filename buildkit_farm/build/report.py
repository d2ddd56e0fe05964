"""What a build did, per target and platform: the plain report, its text and its JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field


@dataclass
class PlatformReport:
    platform: str
    node: str
    emulated: bool
    buildkit_version: str | None
    duration_s: float | None = None
    digest: str | None = None


@dataclass
class VerifyReport:
    platform: str
    node: str
    emulated: bool
    command: str | None  # None: the image's default command
    exit_code: int
    output: str


@dataclass
class TargetReport:
    target: str
    tags: list[str]
    digest: str | None = None
    repo: str | None = None
    platforms: list[PlatformReport] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    variant_tags: list[str] = field(default_factory=list)
    verify: list[VerifyReport] = field(default_factory=list)
    duration_s: float | None = None
    ok: bool = True
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def render_text(reports: Sequence[TargetReport]) -> str:
    """The human summary printed after a build."""
    lines = []
    for r in reports:
        state = "ok" if r.ok else "FAILED"
        lines.append(f"{r.target}: {state}" + (f"  {r.digest}" if r.digest else ""))
        for tag in r.tags:
            lines.append(f"  tag       {tag}")
        for tag in r.variant_tags:
            lines.append(f"  variant   {tag}")
        for p in r.platforms:
            how = "emulated" if p.emulated else "native"
            secs = f"{p.duration_s:.1f}s" if p.duration_s is not None else "-"
            lines.append(
                f"  {p.platform:<14} node {p.node:<10} {how:<8} buildkit {p.buildkit_version or '?':<10} {secs}"
            )
        for source in r.sources:
            lines.append(f"  source    {source}")
        for v in r.verify:
            lines.append(f"  verify    {v.platform:<14} exit {v.exit_code}")
    return "\n".join(lines)


def reports_json(reports: Sequence[TargetReport]) -> str:
    return json.dumps({"targets": [r.to_dict() for r in reports]}, indent=2)
