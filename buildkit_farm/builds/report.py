"""What a build did, per target and platform: the plain report, its text and its JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path

from buildkit_farm.errors import BuildError, FarmError, UsageError, redact, redacted

if sys.version_info >= (3, 11):
    from typing import assert_never
else:  # pragma: no cover
    from typing_extensions import assert_never


class Outcome(str, Enum):
    """What happened to a target's tags (a closed set; the JSON report carries the value)."""

    PENDING = "pending"  # not finished (a run that stopped early)
    PUBLISHED = "published"  # built, checked (and ran): its tags moved
    FAILED = "failed"  # a build, check, run or publish failed: its tags did not move
    HELD = "held"  # --atomic: built and checked, but another target failed: tags did not move
    INTERRUPTED = "interrupted"  # --atomic: Ctrl-C came before its tags moved
    BUILT = "built"  # --no-push: built on every node; nothing written to any registry

    def __str__(self) -> str:
        return self.value


# The names the build side used before the enum.
OUTCOME_PENDING = Outcome.PENDING
OUTCOME_PUBLISHED = Outcome.PUBLISHED
OUTCOME_FAILED = Outcome.FAILED
OUTCOME_HELD = Outcome.HELD
OUTCOME_INTERRUPTED = Outcome.INTERRUPTED


def tags_moved(outcome: Outcome) -> bool | None:
    """Whether the outcome moved the target's tags (None: the run has not decided yet)."""
    match outcome:
        case Outcome.PUBLISHED:
            return True
        case Outcome.FAILED | Outcome.HELD | Outcome.INTERRUPTED | Outcome.BUILT:
            return False
        case Outcome.PENDING:
            return None
        case _:
            assert_never(outcome)


def _state(r: TargetReport) -> str:
    """The summary's word for a target: ok / FAILED, and why its tags did not move when that is news."""
    state = "ok" if r.ok else "FAILED"
    match r.outcome:
        case Outcome.HELD | Outcome.INTERRUPTED:
            return f"{state} ({r.outcome}: tags not moved)"
        case Outcome.BUILT:
            return f"{state} (built, not pushed: --no-push)"
        case Outcome.PUBLISHED | Outcome.FAILED | Outcome.PENDING:
            return state
        case _:
            assert_never(r.outcome)


@dataclass
class PlatformReport:
    platform: str
    node: str
    emulated: bool
    buildkit_version: str | None
    duration_s: float | None = None
    digest: str | None = None
    why_emulated: str | None = None  # e.g. 'node "node2" is drained (by … at …)'; None: not emulated, or unpinned


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
    outcome: Outcome = Outcome.PENDING
    pushed: bool = True  # False: --no-push, nothing of it was written to a registry
    exc: Exception | None = field(default=None, repr=False, compare=False)  # the error itself, not reported

    def to_dict(self) -> dict:
        data = asdict(replace(self, exc=None))
        del data["exc"]
        data["outcome"] = self.outcome.value if isinstance(self.outcome, Outcome) else self.outcome
        return data


def render_text(reports: Sequence[TargetReport]) -> str:
    """The human summary printed after a build."""
    lines = []
    for r in reports:
        lines.append(f"{r.target}: {_state(r)}" + (f"  {r.digest}" if r.digest else ""))
        for tag in r.tags:
            lines.append(f"  tag       {tag}")
        for tag in r.variant_tags:
            lines.append(f"  variant   {tag}")
        for p in r.platforms:
            how = "emulated" if p.emulated else "native"
            secs = f"{p.duration_s:.1f}s" if p.duration_s is not None else "-"
            lines.append(
                f"  {p.platform:<14} node {p.node:<10} {how:<8} buildkit {p.buildkit_version or '?':<10} {secs}"
                + (f"  ({p.why_emulated})" if p.why_emulated else "")
            )
        for source in r.sources:
            lines.append(f"  source    {source}")
        for v in r.verify:
            lines.append(f"  verify    {v.platform:<14} exit {v.exit_code}")
    if len(reports) > 1:
        lines += ["", summary_table(reports)]
    return redact("\n".join(lines))


def reports_data(reports: Sequence[TargetReport], error: Exception | None = None) -> dict:
    """The report as data: every target with its outcome, and the run's error if any; redacted
    as stderr is (a report is kept as an artifact, and artifacts are not masked)."""
    message = getattr(error, "message", None) or (str(error) if error is not None else None)
    return redacted({"ok": error is None, "error": message, "targets": [r.to_dict() for r in reports]})


def reports_json(reports: Sequence[TargetReport], error: Exception | None = None) -> str:
    """The JSON report (`--report FILE`)."""
    return json.dumps(reports_data(reports, error), indent=2)


def check_report_path(path: Path | None) -> None:
    """`--report FILE` must be writable before anything runs (exit 2), so a failed run can write it."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"--report {path} is a folder", hint="give a file path, e.g. --report build-report.json")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(
            f"--report {path}: folder {folder} does not exist", hint="create it first, or pick another path"
        )
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--report {path} cannot be written", hint="pick a path you can write")


def finish(
    reports: Sequence[TargetReport],
    error: Exception | None,
    *,
    report_path: Path | None,
    env: Mapping[str, str] | None = None,
) -> None:
    """After every run, failed or not: the JSON report file and the CI step summary."""
    if report_path is not None:
        report_path.write_text(reports_json(reports, error) + "\n")
    append_step_summary(reports, os.environ if env is None else env)


def summary_rows(reports: Sequence[TargetReport]) -> list[tuple[str, str, str, str, str, str]]:
    """One row per target and platform: target, platform, node, variant digest, verified, outcome."""
    rows = []
    for r in reports:
        verified = {v.platform: "yes" if v.exit_code == 0 else f"exit {v.exit_code}" for v in r.verify}
        for p in r.platforms or [None]:  # type: ignore[list-item]
            platform = p.platform if p else "-"
            node = (p.node + (" (emulated)" if p.emulated else "")) if p else "-"
            rows.append(
                (
                    r.target,
                    platform,
                    node,
                    (p.digest if p else None) or "-",
                    verified.get(platform, "-"),
                    str(r.outcome),
                )
            )
    return rows


def summary_table(reports: Sequence[TargetReport]) -> str:
    """The table printed at the end of a run, one line per target and platform."""
    rows = [("TARGET", "PLATFORM", "NODE", "DIGEST", "VERIFIED", "OUTCOME")] + [
        (t, p, n, d[:19] if d.startswith("sha256:") else d, v, o) for t, p, n, d, v, o in summary_rows(reports)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    return "\n".join("  ".join(f"{c:<{w}}" for c, w in zip(row, widths)).rstrip() for row in rows)


def summary_markdown(reports: Sequence[TargetReport]) -> str:
    """The Markdown summary appended to $GITHUB_STEP_SUMMARY (a GitHub Actions job page)."""
    failed = sum(1 for r in reports if not r.ok)
    head = f"### farm build: {len(reports) - failed} of {len(reports)} target(s) published"
    lines = [head, "", "| target | platform | node | digest | verified | outcome |", "|---|---|---|---|---|---|"]
    for row in summary_rows(reports):
        lines.append("| " + " | ".join(c if c == "-" else f"`{c}`" if i == 3 else c for i, c in enumerate(row)) + " |")
    for r in reports:
        if r.error:
            lines.append(f"\n**{r.target}**: {r.error.splitlines()[0]}")
    return redact("\n".join(lines) + "\n")


def append_step_summary(reports: Sequence[TargetReport], env: Mapping[str, str]) -> None:
    """Append the Markdown summary to $GITHUB_STEP_SUMMARY when it is set (in CI)."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if path and reports:
        with open(path, "a", encoding="utf-8") as f:
            f.write(summary_markdown(reports))


def run_error(reports: Sequence[TargetReport], *, atomic: bool = False) -> FarmError | None:
    """The run's error from its reports: None when every target published.

    One target: its own error (and exit code). Several: one BuildError (exit 1) naming each
    failed target and what happened to the others' tags.
    """
    failed = [r for r in reports if not r.ok]
    if not failed:
        return None
    if len(reports) == 1 and isinstance(failed[0].exc, FarmError):
        return failed[0].exc
    lines = [f'target "{r.target}": {r.error}' for r in failed]
    others = [r for r in reports if r.ok]
    if atomic:
        moved = [r.target for r in reports if tags_moved(r.outcome)]
        hint = (
            f"--atomic: tags moved only for {', '.join(moved)} (interrupted mid-publish); "
            "rerun the same command to move the rest"
            if moved
            else "--atomic: no tag of any target moved; fix the failure and rerun"
        )
    elif others:
        hint = f"the other targets published: {', '.join(r.target for r in others)}; the failed ones' tags did not move"
    else:
        hint = "no tag moved"
    return BuildError(f"{len(failed)} of {len(reports)} target(s) failed:\n" + "\n".join(lines), hint=hint)
