"""The result of one `farm lint` run, as text (`FILE:LINE: SEVERITY RULE: MESSAGE (FIX)`) or JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_farm.lint.files import Subject
from buildkit_farm.lint.findings import SEVERITIES, Finding, shown


@dataclass(frozen=True)
class Report:
    """The findings of one `farm lint` run."""

    subjects: tuple[Subject, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()  # files found in a folder and skipped (a FIFO, too big, unreadable)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def exit_code(self) -> int:
        return 1 if self.count("error") else 0

    def to_dict(self, display: Callable[[Path], str] = str) -> dict[str, Any]:
        return {
            "dockerfiles": [
                {
                    "file": display(s.path),
                    "platform": s.platform,
                    "platforms": list(s.platforms),
                    "origin": s.origin or None,
                }
                for s in self.subjects
            ],
            "findings": [f.to_dict() for f in self.findings],
            "errors": self.count("error"),
            "warnings": self.count("warning"),
            "hints": self.count("hint"),
            "skipped": [shown(note) for note in self.notes],
        }


def render_text(report: Report) -> str:
    """One line per finding, then a summary line."""
    lines = [f.render() for f in report.findings] + [f"note: {shown(note)}" for note in report.notes]
    count = len({s.path for s in report.subjects})
    noun = "Dockerfile" if count == 1 else "Dockerfiles"
    if report.findings:
        parts = [f"{report.count(s)} {s}{'' if report.count(s) == 1 else 's'}" for s in SEVERITIES]
        lines.append(f"{count} {noun}: {', '.join(parts)}")
    else:
        lines.append(f"{count} {noun}: no findings")
    return "\n".join(lines)
