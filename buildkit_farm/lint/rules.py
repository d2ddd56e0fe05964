"""`farm lint`: is a Dockerfile ready for a multi-architecture build?

The book's two rules: always build FROM multi-arch images, and never use OS-specific
commands in RUN or CMD. Each rule below has a stable id, a severity (error fails the lint;
warning and hint don't) and a fix. A Dockerfile is checked against what it is built for:
- a per-platform Dockerfile (a farm target's `dockerfiles` key, or a file name such as
  `Dockerfile.linux-arm64`) against its own platform;
- a multi-arch Dockerfile against the target's platforms, or else against the OS of its
  base image (Windows for `mcr.microsoft.com/windows/…`, `servercore`, `nanoserver`),
  and Linux by default.

Pure: reads text and returns findings. The one registry check (`--registry`) is handed a
reader function, so plain lint stays offline and fast.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from buildkit_farm.errors import FarmError, UsageError
from buildkit_farm.lint import arch, cases
from buildkit_farm.lint.dockerfile import Dockerfile, Instruction, Stage, parse, substitute
from buildkit_farm.lint.files import Subject, display_path, read_dockerfile
from buildkit_farm.lint.findings import SEVERITIES, Check, Finding
from buildkit_farm.lint.names import (
    ImageName,
    Target,
    parse_platform,
    parse_platform_quiet,
    read_image_name,
    same_platform,
    target_from_name,
)
from buildkit_farm.lint.report import Report
from buildkit_farm.lint.shell import Signal, instruction_signals, shell_of

_SHOWN = 8  # at most this many pieces of syntax named in one finding
_SUPPRESS = re.compile(r"#\s*farm-lint:\s*ignore(-file)?=([\w,\s-]+)")

_CROSS_OS_FIX = (
    "use commands every target OS has, or instructions that work everywhere (WORKDIR, COPY, ENV); "
    "or one Dockerfile per OS, joined with `dockerfiles`"
)


def lint_text(
    text: str,
    *,
    file: str = "Dockerfile",
    platform: str | None = None,
    platforms: Sequence[str] = (),
    build_args: Mapping[str, str] | None = None,
    inspect: Callable[[str], Any] | None = None,
) -> list[Finding]:
    """Lint Dockerfile text. `platform`: it is one platform's Dockerfile (a farm target's
    `dockerfiles` key); else the file name may say so. `platforms`: what a multi-arch
    Dockerfile is built for. `inspect`: a registry reader (`registry.inspect_image`)."""
    df = parse(text)
    targets = tuple(parse_platform(p, "target") for p in platforms)
    bound = parse_platform(platform, "farm file") if platform else target_from_name(file)
    if not platform and bound and targets and not (len(targets) == 1 and same_platform(targets[0], bound)):
        bound = None  # built for other platforms than its name says: check it as multi-arch
    check = Check(file=file, df=df, variables=df.variables(build_args), bound=bound, platforms=targets)
    check.oses, check.os_reason = _target_oses(check)
    for line, problem in df.problems:
        check.add("dockerfile-syntax", line, problem, "fix the Dockerfile: the build fails here")
    _check_from(check)
    if inspect is not None:
        _check_registry(check, inspect)
    _check_os_syntax(check)
    arch.check_hard_coded_arch(check)
    arch.check_platform_args(check)
    arch.check_cross_compile(check)
    cases.check_supported_arches(check)
    arch.check_workdir_copy(check)
    return _apply_suppressions(text, df, sorted(set(check.findings), key=_order))


def _order(finding: Finding) -> tuple:
    return (finding.file, finding.line, SEVERITIES.index(finding.severity), finding.rule, finding.message)


def _root_image(df: Dockerfile, stage: Stage) -> str:
    return df.stages[df.roots[stage.index]].base


def _target_oses(check: Check) -> tuple[frozenset[str], str]:
    if check.bound:
        why = "its file name says" if check.bound.source == "file name" else "the farm file builds it for"
        return frozenset({check.bound.os}), f"{why} {check.bound.platform}"
    if check.platforms:
        names = ", ".join(t.platform for t in check.platforms)
        return frozenset(t.os for t in check.platforms), f"the target builds {names}"
    stages = check.df.stages
    for stage in reversed(stages):
        image = substitute(_root_image(check.df, stage), check.variables)
        name = read_image_name(image)
        if name.os == "windows":
            return frozenset({"windows"}), f"its base image {image} is Windows"
    if stages:
        image = substitute(_root_image(check.df, stages[-1]), check.variables)
        if read_image_name(image).os == "linux":
            return frozenset({"linux"}), f"its base image {image} is Linux"
    if check.df.escape == "`":  # the escape Windows Dockerfiles take, so that C:\ paths stay paths
        return frozenset({"windows"}), "its escape directive (`) is the one Windows Dockerfiles use"
    shell = _windows_shell(check.df)
    # A multi-OS base (mcr.microsoft.com/dotnet/sdk) with Windows' own shell and a second sign
    # (a drive path, a Microsoft base): one sign alone may be the mistake windows-command-on-linux names.
    if shell and _windows_sign(check.df):
        return frozenset({"windows"}), f"its SHELL is {shell}, which only Windows has"
    return frozenset({"linux"}), "it builds a Linux image (no Windows base image)"


_DRIVE_PATH = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]:[\\/]")


def _windows_sign(df: Dockerfile) -> bool:
    """A Microsoft base image, or a drive path (`C:\\src`) in any instruction."""
    if any(stage.base.lower().startswith("mcr.microsoft.com/") for stage in df.stages):
        return True
    return any(_DRIVE_PATH.search(ins.text) for stage in df.stages for ins in stage.instructions)


def _windows_shell(df: Dockerfile) -> str | None:
    """The first SHELL's program when only Windows has it: cmd or powershell (`pwsh` runs on Linux too)."""
    for stage in df.stages:
        for ins in stage.instructions:
            if ins.keyword == "SHELL" and ins.exec_form and shell_of(ins) in ("cmd", "powershell"):
                return ins.exec_form[0]
    return None


def _check_from(check: Check) -> None:
    for stage in check.df.stages:
        if stage.parent is not None or stage.base.lower() == "scratch":
            continue
        image = substitute(stage.base, check.variables)
        if _pinned_stage_checked(check, stage) or "$" in image:
            continue  # said already, or can't tell without the build args
        via = f" (from {stage.base})" if image != stage.base else ""
        if check.bound is not None:
            _check_from_on(check, stage, image, via, check.bound)
        else:
            _check_from_for_all(check, stage, image, via)


def _pinned_stage_checked(check: Check, stage: Stage) -> bool:
    """A stage pinned with FROM --platform: checked against the file's platform. True: nothing more to say."""
    if not stage.platform or "$" in substitute(stage.platform, check.variables):
        return False
    pinned = parse_platform_quiet(substitute(stage.platform, check.variables))
    bound = check.bound
    if bound and pinned and not same_platform(pinned, bound):
        check.add(
            "from-platform-mismatch",
            stage.line,
            f"stage {stage.label} is pinned to {stage.platform} but {check.os_reason}",
            f"use --platform={bound.platform}, or drop --platform",
        )
        return True
    if bound is None:
        arch.check_pinned_stage(check, stage, pinned)
        return True
    return False


def _check_from_on(check: Check, stage: Stage, image: str, via: str, bound: Target) -> None:
    """A per-platform Dockerfile: its FROM image must be of that platform."""
    if "BUILDPLATFORM" in (stage.platform or ""):
        return  # runs on the build machine, whatever the file's platform
    name = read_image_name(image)
    if name.arch and bound.arch and name.arch != bound.arch or name.os and name.os != bound.os:
        check.add(
            "from-platform-mismatch",
            stage.line,
            f"FROM {image}{via} names {name.arch_word or name.os}, but {check.os_reason}",
            f"start FROM the {bound.platform} variant (or a multi-arch image with FROM --platform={bound.platform})",
        )


def _check_from_for_all(check: Check, stage: Stage, image: str, via: str) -> None:
    """A Dockerfile built for every platform: its FROM image must not name one OS or architecture."""
    name = read_image_name(image)
    if check.platforms and name.os and name.os not in {t.os for t in check.platforms}:
        check.add(
            "from-platform-mismatch",
            stage.line,
            f"FROM {image}{via} is a {name.os.capitalize()} image, but {check.os_reason}",
            f"start FROM a multi-arch image that has the {', '.join(t.platform for t in check.platforms)} variants",
        )
    elif name.arch and not (check.platforms and all(t.arch == name.arch for t in check.platforms)):
        # built only for the architecture it names (`--platform linux/amd64`, FROM amd64/alpine): fine
        check.add(
            "arch-specific-from",
            stage.line,
            f"FROM {image}{via} names one architecture in its {name.where} (`{name.arch_word}`): "
            f"every platform would start from the {name.arch} image",
            "use the multi-arch image (without the architecture) so each platform gets its own variant; "
            f"or a per-platform Dockerfile.{_file_suffix(name)} joined with `dockerfiles`",
        )


def _file_suffix(name: ImageName) -> str:
    arch = {"arm/v7": "arm", "arm/v6": "armv6", "arm/v5": "armv5"}.get(name.arch or "", name.arch or "")
    return f"{name.os or 'linux'}-{arch}"


def _check_registry(check: Check, inspect: Callable[[str], Any]) -> None:
    """Read each FROM image from its registry: a manifest list holding every platform built?"""
    for stage in check.df.stages:
        image = substitute(stage.base, check.variables)
        if stage.parent is not None or image.lower() == "scratch" or "$" in image:
            continue
        pin = substitute(stage.platform or "", check.variables)
        needed = _needed_platforms(check, pin)
        if needed is None:
            continue  # arch-specific-from said it already
        try:
            index = inspect(image)
        except (FarmError, OSError, ValueError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            check.add(
                "from-unreadable",
                stage.line,
                f"could not read {image} from its registry: {first}",
                "check the registry and your login (`docker login`), or lint without --registry",
            )
            continue
        _check_variants(check, stage.line, image, index, needed, single_ok=check.bound is not None or bool(pin))


def _needed_platforms(check: Check, pin: str) -> tuple[Target, ...] | None:
    """The platforms a stage's FROM image must have (None: the stage is not checked here)."""
    if "BUILDPLATFORM" in pin:
        return ()
    if pin and "$" not in pin:
        if check.bound is None:
            return None
        return tuple(t for t in [parse_platform_quiet(pin)] if t)
    return (check.bound,) if check.bound else check.platforms


def _check_variants(
    check: Check, line: int, image: str, index: Any, needed: tuple[Target, ...], *, single_ok: bool
) -> None:
    variants = [v for v in (parse_platform_quiet(p) for p in index.platforms) if v is not None]
    if not index.is_list and not single_ok:
        plat = variants[0].platform if variants else "one platform"
        check.add(
            "from-not-multiarch",
            line,
            f"{image} is a single image ({plat}), not a manifest list",
            "use a multi-arch tag, or publish one (`farm build` or `docker buildx imagetools create`)",
        )
        return
    missing = [t.platform for t in needed if not any(same_platform(t, v) and v.arch == t.arch for v in variants)]
    if missing:
        check.add(
            "from-missing-platform",
            line,
            f"{image} has no {', '.join(missing)} variant (it has {', '.join(index.platforms) or 'none'})",
            "pick a base image that has every platform you build, or drop that platform",
        )


def _check_os_syntax(check: Check) -> None:
    default = "cmd" if check.oses == frozenset({"windows"}) else "sh"
    every: list[Signal] = []
    shells: dict[int, str] = {}
    for stage in check.df.stages:
        shell = shells.get(stage.parent, default) if stage.parent is not None else default
        for ins in stage.instructions:
            signals = instruction_signals(ins, shell)
            if ins.keyword == "SHELL":
                shell = shell_of(ins) or shell
            every.extend(signals)
            _report_os(check, ins, signals)
        shells[stage.index] = shell
    linux = [s for s in every if s.os == "linux"]
    windows = [s for s in every if s.os == "windows"]
    if linux and windows:
        first_linux = min(linux, key=lambda s: s.line)
        first_windows = min(windows, key=lambda s: s.line)
        later = max(first_linux, first_windows, key=lambda s: s.line)
        check.add(
            "mixed-os-syntax",
            later.line,
            f"Linux syntax ({first_linux.what}, line {first_linux.line}) and Windows syntax "
            f"({first_windows.what}, line {first_windows.line}) in one Dockerfile: no OS runs all of it; "
            "it may still build, since CMD only runs when a container starts",
            _CROSS_OS_FIX,
        )


def _report_os(check: Check, ins: Instruction, signals: list[Signal]) -> None:
    when = (
        f"; it builds fine, as {ins.keyword} only runs when a container starts"
        if ins.keyword in ("CMD", "ENTRYPOINT", "HEALTHCHECK")
        else ""
    )
    for os_name, rule, label in (
        ("windows", "windows-command-on-linux", "Windows"),
        ("linux", "linux-command-on-windows", "Linux"),
    ):
        wrong = "linux" if os_name == "windows" else "windows"
        if wrong not in check.oses:
            continue
        hits = sorted((s for s in signals if s.os == os_name), key=lambda s: s.line)
        if not hits:
            continue
        texts = list(dict.fromkeys(s.what for s in hits))[:_SHOWN]
        # `cmd` and `cmd /S` found by two patterns: show the longer one only.
        names = ", ".join(t for t in texts if not any(t != o and t.strip("`") in o for o in texts))
        check.add(
            rule,
            hits[0].line,
            f"{ins.keyword} uses {label} syntax ({names}) but {check.os_reason}{when}",
            _CROSS_OS_FIX,
        )


def _apply_suppressions(text: str, df: Dockerfile, findings: list[Finding]) -> list[Finding]:
    """`# farm-lint: ignore=rule,…` silences the next instruction; `ignore-file=` the file."""
    if "farm-lint" not in text:
        return findings
    whole: set[str] = set()
    starts = sorted(ins.line for ins in df.instructions)
    ends = {ins.line: max(ins.spans[-1][1] if ins.spans else ins.line, ins.line) for ins in df.instructions}
    by_start: dict[int, set[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _SUPPRESS.search(line) if line.lstrip().startswith("#") else None
        if not match:
            continue
        rules = {r.strip() for r in match.group(2).split(",") if r.strip()}
        if match.group(1):
            whole |= rules
            continue
        following = bisect_right(starts, number)
        if following < len(starts):
            by_start.setdefault(starts[following], set()).update(rules)

    def silenced(finding: Finding) -> bool:
        if finding.rule in whole:
            return True
        index = bisect_right(starts, finding.line) - 1
        if index < 0:
            return False
        start = starts[index]
        return finding.line <= ends[start] and finding.rule in by_start.get(start, set())

    return [f for f in findings if not silenced(f)]


def lint_subjects(
    subjects: Sequence[Subject],
    *,
    inspect: Callable[[str], Any] | None = None,
    display: Callable[[Path], str] = display_path,
) -> Report:
    """Lint every subject; the same finding from two targets sharing a file is kept once."""
    findings: dict[tuple, Finding] = {}
    skipped: list[tuple[Subject, str]] = []
    for subject in subjects:
        try:
            text = read_dockerfile(subject.path)
        except UsageError as err:
            if not subject.found:
                raise
            skipped.append((subject, err.message))
            continue
        for finding in lint_text(
            text,
            file=display(subject.path),
            platform=subject.platform,
            platforms=subject.platforms,
            build_args=dict(subject.build_args),
            inspect=inspect,
        ):
            findings.setdefault((finding.file, finding.line, finding.rule, finding.message), finding)
    ordered = sorted(findings.values(), key=_order)
    notes = tuple(f"{why}: skipped" for _, why in skipped)
    return Report(subjects=tuple(subjects), findings=tuple(ordered), notes=notes)
