"""What `farm lint` reports: the rules (stable id, severity, summary), a finding, and the
state of one Dockerfile being checked, shared by the rule modules.

Anything printed from a Dockerfile goes through `shown()`: control characters (ANSI escapes,
C1, bidi overrides) are escaped, so a Dockerfile cannot rewrite the terminal it is linted in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from buildkit_farm.errors import printable as shown  # the one escaper of everything farm prints
from buildkit_farm.lint.dockerfile import Dockerfile
from buildkit_farm.lint.names import Target, parse_platform_quiet

SEVERITIES = ("error", "warning", "hint")


@dataclass(frozen=True)
class Rule:
    """A lint rule: its stable id, severity and one-line summary (docs/lint.md)."""

    id: str
    severity: str
    summary: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("dockerfile-syntax", "error", "BuildKit would refuse the Dockerfile"),
        Rule("arch-specific-from", "error", "a multi-arch Dockerfile starts FROM one architecture's image"),
        Rule("from-platform-mismatch", "error", "FROM names another platform than the one being built"),
        Rule("from-not-multiarch", "error", "the FROM tag is a single image, not a manifest list (--registry)"),
        Rule("from-missing-platform", "error", "the FROM list lacks a platform being built (--registry)"),
        Rule("from-unreadable", "warning", "the FROM image could not be read from its registry (--registry)"),
        Rule("windows-command-on-linux", "error", "Windows commands or syntax in a Linux image"),
        Rule("linux-command-on-windows", "error", "Linux commands or syntax in a Windows image"),
        Rule("mixed-os-syntax", "error", "Linux and Windows syntax in one Dockerfile"),
        Rule("wrong-arch-binary", "error", "the final image gets one architecture's files on every platform"),
        Rule("hard-coded-arch", "warning", "an architecture is hard-coded where TARGETARCH would serve"),
        Rule("pinned-stage", "warning", "a stage pinned to one platform is copied from: its output is that arch's"),
        Rule("unsupported-platform", "warning", "a `case` over the architecture fails for a platform being built"),
        Rule("arch-case-no-default", "hint", "a `case` over the architecture has no `*)` branch: others pass silently"),
        Rule("undeclared-platform-arg", "warning", "a platform ARG is used in a stage that does not declare it"),
        Rule("build-stage-ignores-target", "warning", "a $BUILDPLATFORM stage compiles without the target's OS/arch"),
        Rule("missing-buildplatform", "hint", "a cross-compiling stage runs emulated instead of on $BUILDPLATFORM"),
        Rule("prefer-workdir-copy", "hint", "mkdir/cp in RUN where WORKDIR/COPY work on every OS"),
    )
}


@dataclass(frozen=True)
class Finding:
    """One problem found: where, how bad, which rule, what and how to fix it."""

    file: str
    line: int
    severity: str
    rule: str
    message: str
    fix: str

    def render(self) -> str:
        return shown(f"{self.file}:{self.line}: {self.severity} {self.rule}: {self.message} ({self.fix})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "severity": self.severity,
            "rule": self.rule,
            "message": shown(self.message),
            "fix": shown(self.fix),
        }


@dataclass
class Check:
    """One Dockerfile being checked: what it is built for, and the findings so far."""

    file: str
    df: Dockerfile
    variables: dict[str, str]
    bound: Target | None  # a per-platform Dockerfile's platform
    platforms: tuple[Target, ...]  # a multi-arch Dockerfile's platforms, when known
    oses: frozenset[str] = frozenset()
    os_reason: str = ""
    findings: list[Finding] = field(default_factory=list)

    def add(self, rule: str, line: int, message: str, fix: str) -> None:
        self.findings.append(Finding(self.file, line, RULES[rule].severity, rule, message, fix))

    @cached_property
    def final_chain(self) -> frozenset[int]:
        """The stages the final image is built on: the last stage and the stages it starts FROM."""
        chain: set[int] = set()
        stage = self.df.stages[-1] if self.df.stages else None
        while stage is not None and stage.index not in chain:
            chain.add(stage.index)
            stage = self.df.stages[stage.parent] if stage.parent is not None else None
        return frozenset(chain)

    @cached_property
    def final_lines(self) -> frozenset[int]:
        """The lines of the instructions of the final image's stages."""
        stages = self.df.stages
        return frozenset(i.line for index in self.final_chain for i in stages[index].instructions)

    @cached_property
    def pinned_arches(self) -> frozenset[str]:
        """The architectures the stages pinned to a literal platform (not the final image's) name."""
        arches = set()
        for stage in self.df.stages:
            if stage.platform and "$" not in stage.platform and stage.index not in self.final_chain:
                pinned = parse_platform_quiet(stage.platform)
                if pinned and pinned.arch:
                    arches.add(pinned.arch)
        return frozenset(arches)

    @cached_property
    def own_arches(self) -> frozenset[str]:
        """Architectures every variant is built for: the bound one, or the one arch all targets share.

        A Windows Dockerfile that names no architecture is amd64's: Windows images are built one
        at a time on a Windows host (buildx builds none), and their base images are amd64 images,
        so its `…-windows-amd64.zip` downloads are its own architecture's.
        """
        if self.bound is not None and self.bound.arch:
            return frozenset({self.bound.arch})
        arches = {t.arch for t in self.platforms}
        if self.oses == frozenset({"windows"}) and not any(arches):
            return frozenset({"amd64"})
        if self.bound is not None:
            return frozenset()
        return frozenset(a for a in arches if a) if len(arches) == 1 else frozenset()
