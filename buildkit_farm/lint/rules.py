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

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_farm.errors import FarmError, UsageError
from buildkit_farm.farmfile.platforms import ARCH_ALIASES
from buildkit_farm.lint.dockerfile import (
    Dockerfile,
    Instruction,
    Stage,
    arg_declarations,
    env_declarations,
    parse,
    substitute,
)

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
        Rule("hard-coded-arch", "warning", "an architecture is hard-coded where TARGETARCH would serve"),
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
        return f"{self.file}:{self.line}: {self.severity} {self.rule}: {self.message} ({self.fix})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "severity": self.severity,
            "rule": self.rule,
            "message": self.message,
            "fix": self.fix,
        }


# --------------------------------------------------------------------------- platforms

_CANONICAL_ARCHES = ("amd64", "arm64", "386", "ppc64le", "s390x", "riscv64", "mips64le", "mips64", "loong64")
# Words too short or too common to mean an architecture outside a tag or a file name.
_LOOSE_WORDS = frozenset({"arm", "x86", "x64", "386"})
_EXTRA_WORDS = {"winamd64": "amd64", "armv8l": "arm/v7", "arm64v8": "arm64"}


def _arch_table() -> dict[str, str]:
    table = {word: arch for word, arch in ARCH_ALIASES.items() if "/" not in word}
    table.update({arch: arch for arch in _CANONICAL_ARCHES})
    table.update(_EXTRA_WORDS)
    return table


ARCH_WORDS: dict[str, str] = _arch_table()  # word → canonical arch ("arm/v7")


def _words_regex(words: Iterable[str]) -> re.Pattern:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9])({alternatives})(?![A-Za-z0-9])", re.IGNORECASE)


_ANY_ARCH = _words_regex(ARCH_WORDS)
_STRICT_ARCH = _words_regex(w for w in ARCH_WORDS if w not in _LOOSE_WORDS)


@dataclass(frozen=True)
class Target:
    """The OS and (when known) architecture a Dockerfile is built for, and why we think so."""

    os: str
    arch: str | None  # canonical: "amd64", "arm/v7"; None when only the OS is known
    source: str  # "farm file", "file name", "--platform"

    @property
    def platform(self) -> str:
        return f"{self.os}/{self.arch}" if self.arch else self.os


def arch_key(arch: str) -> str:
    """The canonical architecture, variants that don't matter here folded: arm64/v8 → arm64."""
    arch = arch.lower()
    arch = ARCH_WORDS.get(arch, ARCH_ALIASES.get(arch, arch))
    if arch.startswith("amd64/") or arch == "arm64/v8":
        return arch.split("/")[0]
    return "arm/v7" if arch == "arm" else arch


def parse_platform(text: str, source: str) -> Target:
    """`linux/arm/v7`, `windows/amd64`, `arm64` → a Target; raises UsageError if unknown."""
    parts = text.strip().lower().split("/")
    os_name = parts[0] if parts[0] in ("linux", "windows") else "linux"
    arch = "/".join(parts[1:] if parts[0] in ("linux", "windows") else parts)
    if not arch:
        return Target(os_name, None, source)
    key = arch_key(arch)
    if key not in ARCH_WORDS.values() and key.split("/")[0] not in _CANONICAL_ARCHES + ("arm",):
        raise UsageError(f'unknown platform "{text}"', hint="use os/arch, e.g. linux/arm64 or windows/amd64")
    return Target(os_name, key, source)


def target_from_name(filename: str) -> Target | None:
    """The platform a file name gives: `Dockerfile.linux-arm` → linux/arm/v7, else None."""
    name = os.path.basename(filename)
    lower = name.lower()
    if lower.startswith(("dockerfile.", "dockerfile-", "dockerfile_")):
        tail = name[len("dockerfile.") :]
    elif lower.endswith(".dockerfile"):
        tail = name[: -len(".dockerfile")]
    else:
        return None
    tokens = set(re.split(r"[-_.]", tail.lower()))
    os_name = "windows" if tokens & {"windows", "win", "nanoserver", "servercore"} else None
    os_name = os_name or ("linux" if "linux" in tokens else None)
    match = _ANY_ARCH.search(tail)
    if not os_name and not match:
        return None
    return Target(os_name or "linux", arch_key(match.group(1)) if match else None, "file name")


@dataclass(frozen=True)
class ImageName:
    """What an image reference says about its platform, read from its words only."""

    ref: str
    arch: str | None  # canonical arch the name or tag names
    arch_word: str | None  # the word as written, e.g. "arm64v8"
    where: str  # "namespace", "name" or "tag"
    os: str | None  # "windows"/"linux" when the name says so


_WINDOWS_WORDS = re.compile(r"(?<![a-z0-9])(windows|nanoserver|servercore|winamd64|ltsc20\d\d)(?![a-z0-9])", re.I)
_LINUX_WORD = re.compile(r"(?<![a-z0-9])linux(?![a-z0-9])", re.I)


def read_image_name(ref: str) -> ImageName:
    """Split `registry/namespace/name:tag@digest` and look for architecture and OS words."""
    name = ref.split("@", 1)[0]
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]  # the registry host says nothing about the platform
    places = [("namespace", p, _STRICT_ARCH) for p in parts[:-1]]
    places += [("name", parts[-1], _STRICT_ARCH), ("tag", tag, _ANY_ARCH)]
    arch = word = None
    where = ""
    for place, text, pattern in places:
        match = pattern.search(text)
        if match:
            word, where = match.group(1), place
            arch = arch_key(word)
            break
    everything = "/".join(parts) + ":" + tag
    os_name = None
    if _WINDOWS_WORDS.search(everything) or ref.lower().startswith("mcr.microsoft.com/windows"):
        os_name = "windows"
    elif _LINUX_WORD.search(everything):
        os_name = "linux"
    return ImageName(ref=ref, arch=arch, arch_word=word, where=where, os=os_name)


# --------------------------------------------------------------------------- OS syntax


@dataclass(frozen=True)
class Signal:
    """A piece of OS-specific syntax: which OS it belongs to, the text and its line."""

    os: str
    what: str
    line: int


_WINDOWS_PROGRAMS = frozenset(
    "cmd powershell del erase rd xcopy robocopy copy move ren setx icacls msiexec choco winget "
    "reg findstr certutil md".split()
)
_LINUX_PROGRAMS = frozenset(
    "uname sh bash ash dash zsh apk apt apt-get dpkg yum dnf microdnf rpm zypper chmod chown chgrp "
    "ln grep sed awk touch which export useradd groupadd adduser addgroup ldconfig "
    "update-ca-certificates".split()
)
# PowerShell has aliases for these, so they are Linux-only under cmd or sh only.
_LINUX_ALIASED = frozenset("ls cat rm cp mv head tail".split())
_SHELLS = {
    "sh": "sh",
    "bash": "sh",
    "ash": "sh",
    "dash": "sh",
    "zsh": "sh",
    "cmd": "cmd",
    "powershell": "powershell",
    "pwsh": "pwsh",
}
_PREFIX_WORDS = frozenset("sudo exec env time nohup if then else elif do while until ! { } fi done".split())

_PERCENT_VARIABLE = re.compile(r"%[A-Z_][A-Z0-9_]+%")
_WINDOWS_PATTERNS: tuple[tuple[re.Pattern, bool], ...] = (  # (pattern, also under pwsh)
    (_PERCENT_VARIABLE, True),
    (re.compile(r"(?<![A-Za-z0-9])[A-Za-z]:\\"), True),
    (re.compile(r"(?i)(?<![\w-])(?:dir|del|rd|rmdir|copy|xcopy|move|md|mkdir|type|attrib)\s+/[a-z]\b"), True),
    (re.compile(r"(?i)(?<![\w-])cmd(?:\.exe)?\s+/[sck]\b"), True),
    (re.compile(r"(?i)(?<![\w-])powershell(?:\.exe)?(?![\w-])"), True),
    (re.compile(r"(?i)(?<![\w.-])[\w\\/.-]+\.(?:exe|bat|ps1)(?![\w.-])"), True),
    (re.compile(r"\$env:[A-Za-z_]\w*"), False),
    (
        re.compile(
            r"(?<![\w-])(?:Get|Set|New|Remove|Invoke|Expand|Copy|Move|Start|Stop|Write|Add|Out|Test|Install|Import)-[A-Z][A-Za-z]+"
        ),
        False,
    ),
)
_LINUX_PATTERNS: tuple[re.Pattern, ...] = (
    re.compile(r"(?<![\w-])uname(?![\w-])"),
    re.compile(r"(?<![\w.~-])/(?:usr/(?:local/)?)?s?bin/[\w.+-]+"),
    re.compile(r"(?<![\w-])(?:ba)?sh\s+-c(?![\w-])"),
    re.compile(r"(?<![\w-])(?:apk|apt-get|apt|yum|dnf)\s+(?:add|install|update|upgrade|del|remove)\b"),
    re.compile(r"(?<![\w-])mkdir\s+-p(?![\w-])"),
)
_SHELL_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*")


def _program(word: str) -> str:
    base = re.split(r"[\\/]", word.strip("\"'"))[-1].lower()
    return base[:-4] if base.endswith(".exe") else base


def split_commands(script: str) -> list[tuple[int, str]]:
    """The simple commands of a shell line, each with its offset (quotes respected)."""
    commands: list[tuple[int, str]] = []
    start, quote, i = 0, "", 0
    while i < len(script):
        char = script[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in ";|&\n()":
            commands.append((start, script[start:i]))
            i += 2 if script[i : i + 2] in ("&&", "||") else 1
            start = i
            continue
        i += 1
    commands.append((start, script[start:]))
    return [(off, text) for off, text in commands if text.strip()]


def command_words(script: str) -> list[tuple[int, str, str]]:
    """(offset, word, the rest) for the command word of each simple command."""
    result = []
    for offset, text in split_commands(script):
        for match in re.finditer(r"\S+", text):
            word = match.group(0)
            if word in _PREFIX_WORDS or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
                continue
            result.append((offset + match.start(), word, text[match.end() :]))
            break
    return result


def _word_signals(script: str, shell: str, where: Callable[[int, str], int]) -> list[Signal]:
    """Signals from the command word of each simple command in a shell script."""
    found: list[Signal] = []
    for offset, word, rest in command_words(script):
        program = _program(word)
        line = where(offset, word)
        if program in _WINDOWS_PROGRAMS and not (program == "md" and rest.strip().startswith("-")):
            found.append(Signal("windows", f"`{word}`", line))
        elif (
            program in _LINUX_PROGRAMS
            or word.startswith("./")
            and word.endswith(".sh")
            or program in _LINUX_ALIASED
            and shell not in ("powershell", "pwsh")
        ):
            found.append(Signal("linux", f"`{word}`", line))
    if shell == "cmd":  # `$VAR` means nothing to cmd
        for match in _SHELL_VARIABLE.finditer(script):
            found.append(Signal("linux", f"`{match.group(0)}`", where(match.start(), match.group(0))))
    return found


_TEMPLATE_TOOLS = frozenset("sed awk gawk perl printf envsubst".split())


def _template_spans(script: str) -> list[tuple[int, int]]:
    """Where `%NAME%` is text, not a variable, in a sh script: single quotes, and the
    arguments of text tools (sed, awk, printf…)."""
    spans: list[tuple[int, int]] = []
    quote, start = "", 0
    for i, char in enumerate(script):
        if quote:
            if char == quote:
                if quote == "'":
                    spans.append((start, i))
                quote = ""
        elif char in "\"'":
            quote, start = char, i
    for offset, text in split_commands(script):
        words = text.split()
        if words and _program(words[0]) in _TEMPLATE_TOOLS:
            spans.append((offset, offset + len(text)))
    return spans


def _pattern_signals(text: str, shell: str, where: Callable[[int, str], int]) -> list[Signal]:
    """Signals from OS-specific syntax anywhere in the text (`%VAR%`, `C:\\`, `/bin/sh`…)."""
    found: list[Signal] = []
    templates = _template_spans(text) if shell == "sh" else []
    for pattern, under_pwsh in _WINDOWS_PATTERNS:
        if shell == "pwsh" and not under_pwsh:
            continue
        for match in pattern.finditer(text):
            if pattern is _PERCENT_VARIABLE and any(a <= match.start() < b for a, b in templates):
                continue  # a placeholder such as sed 's/%VERSION%/1.2/', not cmd's variable
            found.append(Signal("windows", f"`{match.group(0)}`", where(match.start(), match.group(0))))
    for pattern in _LINUX_PATTERNS:
        for match in pattern.finditer(text):
            found.append(Signal("linux", f"`{match.group(0)}`", where(match.start(), match.group(0))))
    return found


def instruction_signals(ins: Instruction, shell: str) -> list[Signal]:
    """The OS-specific syntax in one instruction, run under `shell` (sh, cmd, powershell, pwsh)."""
    if ins.keyword in ("WORKDIR", "ENV", "VOLUME", "COPY", "ADD"):
        # Paths only: a drive letter is Windows syntax anywhere.
        return [
            Signal("windows", f"`{m.group(0)}`", ins.line_at(m.start()))
            for m in re.finditer(r"(?<![A-Za-z0-9])[A-Za-z]:\\", ins.text)
        ]
    if ins.keyword not in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK"):
        return []
    text = ins.text
    if ins.keyword == "HEALTHCHECK":
        if not text.lstrip().upper().startswith("CMD"):
            return []
        text = text.lstrip()[3:]
    if ins.exec_form is None:
        if ins.keyword == "HEALTHCHECK":
            where = lambda off, word: ins.line_of(word)  # noqa: E731
        else:
            where = lambda off, word: ins.line_at(off)  # noqa: E731
        return _word_signals(text, shell, where) + _pattern_signals(text, shell, where)
    return _exec_signals(ins, ins.exec_form, shell)


def _exec_signals(ins: Instruction, argv: Sequence[str], shell: str) -> list[Signal]:
    if not argv:
        return []
    program = _program(argv[0])
    where = lambda off, word: ins.line_of(json.dumps(word)[1:-1])  # noqa: E731
    found: list[Signal] = []
    runs_as = _SHELLS.get(program)
    if program in _WINDOWS_PROGRAMS:
        found.append(Signal("windows", f"`{argv[0]}`", where(0, argv[0])))
    elif program in _LINUX_PROGRAMS or program in _LINUX_ALIASED or argv[0].startswith("/"):
        found.append(Signal("linux", f"`{argv[0]}`", where(0, argv[0])))
    if ins.keyword == "SHELL":
        return found
    found += _pattern_signals(" ".join(argv), runs_as or shell, where)
    if runs_as:  # a shell given its script (`sh -c …`, `cmd /S /C …`): read it as that shell would
        found += _word_signals(" ".join(argv[1:]), runs_as, where)
    return found


def shell_of(ins: Instruction) -> str | None:
    """The kind of shell a SHELL instruction sets: sh, cmd, powershell or pwsh."""
    if ins.exec_form:
        return _SHELLS.get(_program(ins.exec_form[0]), "sh")
    return None


# --------------------------------------------------------------------------- the checks

_PLATFORM_ARGS = (
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
)
_PLATFORM_AWARE = re.compile(
    r"TARGET(?:ARCH|PLATFORM|OS|VARIANT)|BUILD(?:ARCH|PLATFORM|OS|VARIANT)|uname\s+-\w*m"
    r"|dpkg\s+--print-architecture|apk\s+--print-arch|\$\(arch\)|`arch`"
)
_PLATFORM_ARG_USE = re.compile(r"\$\{?(" + "|".join(_PLATFORM_ARGS) + r")\b|%(" + "|".join(_PLATFORM_ARGS) + r")%")
_COMPILERS = re.compile(
    r"(?<![\w-])(?:go\s+(?:build|install)|cargo\s+(?:build|install)|rustc|gcc|g\+\+|clang|clang\+\+|cc|c\+\+"
    r"|dotnet\s+(?:publish|build)|zig\s+(?:build|cc)|mvn|gradle|javac)(?![\w-])|\bGOARCH="
)
_NATIVE_COMPILERS = re.compile(
    r"(?<![\w-])(?:go|cargo|rustc|gcc|g\+\+|clang|clang\+\+|cc|c\+\+|dotnet|zig)(?![\w-])|\bGOARCH="
)
_SUPPRESS = re.compile(r"#\s*farm-lint:\s*ignore(-file)?=([\w,\s-]+)")

_CROSS_OS_FIX = (
    "use commands every target OS has, or instructions that work everywhere (WORKDIR, COPY, ENV); "
    "or one Dockerfile per OS, joined with `dockerfiles`"
)


@dataclass
class _Check:
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
    if not platform and bound and targets and not (len(targets) == 1 and _same(targets[0], bound)):
        bound = None  # built for other platforms than its name says: check it as multi-arch
    check = _Check(file=file, df=df, variables=df.variables(build_args), bound=bound, platforms=targets)
    check.oses, check.os_reason = _target_oses(check)
    for line, problem in df.problems:
        check.add("dockerfile-syntax", line, problem, "fix the Dockerfile: BuildKit refuses it")
    _check_from(check)
    if inspect is not None:
        _check_registry(check, inspect)
    _check_os_syntax(check)
    _check_hard_coded_arch(check)
    _check_platform_args(check)
    _check_cross_compile(check)
    _check_workdir_copy(check)
    return _apply_suppressions(text, df, sorted(set(check.findings), key=_order))


def _order(finding: Finding) -> tuple:
    return (finding.file, finding.line, SEVERITIES.index(finding.severity), finding.rule, finding.message)


def _root_image(df: Dockerfile, stage: Stage) -> str:
    seen = set()
    while stage.parent is not None and stage.index not in seen:
        seen.add(stage.index)
        stage = df.stages[stage.parent]
    return stage.base


def _target_oses(check: _Check) -> tuple[frozenset[str], str]:
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
    return frozenset({"linux"}), "it builds a Linux image (no Windows base image)"


def _check_from(check: _Check) -> None:
    per_platform = check.bound is not None
    for stage in check.df.stages:
        if stage.parent is not None or stage.base.lower() == "scratch":
            continue
        image = substitute(stage.base, check.variables)
        via = f" (from {stage.base})" if image != stage.base else ""
        if stage.platform and "$" not in substitute(stage.platform, check.variables):
            pinned = parse_platform_quiet(substitute(stage.platform, check.variables))
            if per_platform and pinned and not _same(pinned, check.bound):
                check.add(
                    "from-platform-mismatch",
                    stage.line,
                    f"stage {stage.label} is pinned to {stage.platform} but {check.os_reason}",
                    f"use --platform={check.bound.platform}, or drop --platform",
                )
                continue
            if not per_platform:
                check.add(
                    "arch-specific-from",
                    stage.line,
                    f"FROM --platform={stage.platform} pins stage {stage.label} to one platform",
                    "drop --platform so each platform gets its own variant; "
                    "a stage that cross-compiles takes --platform=$BUILDPLATFORM",
                )
                continue
        if "$" in image:
            continue  # can't tell without the build args
        name = read_image_name(image)
        if per_platform:
            bound = check.bound
            if "BUILDPLATFORM" in (stage.platform or ""):
                continue  # runs on the build machine, whatever the file's platform
            if name.arch and bound.arch and name.arch != bound.arch or name.os and name.os != bound.os:
                says = name.arch_word or name.os
                check.add(
                    "from-platform-mismatch",
                    stage.line,
                    f"FROM {image}{via} names {says}, but {check.os_reason}",
                    f"start FROM the {bound.platform} variant (or a multi-arch image with "
                    f"FROM --platform={bound.platform})",
                )
        elif check.platforms and name.os and name.os not in {t.os for t in check.platforms}:
            check.add(
                "from-platform-mismatch",
                stage.line,
                f"FROM {image}{via} is a {name.os.capitalize()} image, but {check.os_reason}",
                f"start FROM a multi-arch image that has the {', '.join(t.platform for t in check.platforms)} variants",
            )
        elif name.arch:
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


def parse_platform_quiet(text: str) -> Target | None:
    try:
        return parse_platform(text, "--platform")
    except UsageError:
        return None


def _same(a: Target, b: Target | None) -> bool:
    return b is None or (a.os == b.os and (a.arch is None or b.arch is None or a.arch == b.arch))


def _check_registry(check: _Check, inspect: Callable[[str], Any]) -> None:
    """Read each FROM image from its registry: a manifest list holding every platform built?"""
    for stage in check.df.stages:
        image = substitute(stage.base, check.variables)
        if stage.parent is not None or image.lower() == "scratch" or "$" in image:
            continue
        pin = substitute(stage.platform or "", check.variables)
        if "BUILDPLATFORM" in pin:
            needed: tuple[Target, ...] = ()
        elif pin and "$" not in pin:
            if check.bound is None:
                continue  # arch-specific-from said it already
            needed = tuple(t for t in [parse_platform_quiet(pin)] if t)
        else:
            needed = (check.bound,) if check.bound else check.platforms
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
        variants = [parse_platform_quiet(p) for p in index.platforms]
        variants = [v for v in variants if v]
        if not index.is_list:
            if check.bound is None and not pin:
                plat = variants[0].platform if variants else "one platform"
                check.add(
                    "from-not-multiarch",
                    stage.line,
                    f"{image} is a single image ({plat}), not a manifest list",
                    "use a multi-arch tag, or publish one (`farm build` or `docker buildx imagetools create`)",
                )
                continue
        missing = [t.platform for t in needed if not any(_same(t, v) and v.arch == t.arch for v in variants)]
        if missing:
            rule = "from-missing-platform"
            check.add(
                rule,
                stage.line,
                f"{image} has no {', '.join(missing)} variant (it has {', '.join(index.platforms) or 'none'})",
                "pick a base image that has every platform you build, or drop that platform",
            )


def _check_os_syntax(check: _Check) -> None:
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


def _report_os(check: _Check, ins: Instruction, signals: list[Signal]) -> None:
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
        texts = list(dict.fromkeys(s.what for s in hits))
        # `cmd` and `cmd /S` found by two patterns: show the longer one only.
        names = ", ".join(t for t in texts if not any(t != o and t.strip("`") in o for o in texts))
        check.add(
            rule,
            hits[0].line,
            f"{ins.keyword} uses {label} syntax ({names}) but {check.os_reason}{when}",
            _CROSS_OS_FIX,
        )


def _from_arg_names(df: Dockerfile) -> set[str]:
    names: set[str] = set()
    for stage in df.stages:
        for text in (stage.base, stage.platform or ""):
            names.update(m.group(1) or m.group(2) for m in re.finditer(r"\$\{?(\w+)|\$(\w+)", text))
    return names


def _check_hard_coded_arch(check: _Check) -> None:
    used_by_from = _from_arg_names(check.df)
    candidates: list[Instruction] = []
    for ins in check.df.global_args:
        if not {name for name, _ in arg_declarations(ins.text)} & used_by_from:
            candidates.append(ins)
    for stage in check.df.stages:
        candidates.extend(i for i in stage.instructions if i.keyword in ("RUN", "ENV", "ARG", "ADD"))
    for ins in candidates:
        text = ins.text
        if ins.keyword == "ARG":
            text = " ".join(default or "" for _, default in arg_declarations(ins.text))
            if not text.strip():
                continue
        if _PLATFORM_AWARE.search(ins.text):
            continue  # it already maps the arch from the platform (a case on $TARGETARCH…)
        words = [m for m in _STRICT_ARCH.finditer(text)]
        if check.bound and check.bound.arch:
            words = [m for m in words if arch_key(m.group(1)) != check.bound.arch]
        if not words:
            continue
        shown = ", ".join(dict.fromkeys(f"`{m.group(1)}`" for m in words))
        uname_style = any(m.group(1).lower() in ("x86_64", "aarch64", "armv7l", "i686") for m in words)
        fix = "use `ARG TARGETARCH` (or TARGETPLATFORM) in the stage instead" + (
            "; map it when a tool wants uname names (amd64→x86_64, arm64→aarch64)" if uname_style else ""
        )
        line = ins.line_of(words[0].group(1)) if ins.keyword == "ARG" else ins.line_at(words[0].start())
        check.add("hard-coded-arch", line, f"{ins.keyword} hard-codes {shown}: every platform gets the same value", fix)


def _check_platform_args(check: _Check) -> None:
    inherited_env: dict[int, set[str]] = {}
    for stage in check.df.stages:
        declared = set(inherited_env.get(stage.parent, set())) if stage.parent is not None else set()
        env_names: set[str] = set(declared)
        reported: set[str] = set()
        for ins in stage.instructions:
            if ins.keyword in ("CMD", "ENTRYPOINT", "ONBUILD", "HEALTHCHECK", "SHELL"):
                continue  # run time, not build time
            for match in _PLATFORM_ARG_USE.finditer(ins.text):
                name = match.group(1) or match.group(2)
                if name in declared or name in reported:
                    continue
                reported.add(name)
                check.add(
                    "undeclared-platform-arg",
                    ins.line_at(match.start()),
                    f"{match.group(0)} is empty here: stage {stage.label} has no `ARG {name}`",
                    f"add `ARG {name}` inside the stage (an ARG before FROM or in another stage does not carry over)",
                )
            if ins.keyword == "ARG":
                declared.update(name for name, _ in arg_declarations(ins.text))
            elif ins.keyword == "ENV":
                names = {name for name, _ in env_declarations(ins.text)}
                declared.update(names)
                env_names.update(names)
        inherited_env[stage.index] = env_names


def _consumers(df: Dockerfile) -> dict[int, int]:
    """Stage index → the first line that copies or mounts files from it."""
    used: dict[int, int] = {}
    for stage in df.stages:
        for ins in stage.instructions:
            refs = []
            if ins.keyword in ("COPY", "ADD") and ins.flag("from"):
                refs.append(ins.flag("from"))
            for key, value in ins.flags:
                if key == "mount":
                    refs += re.findall(r"(?:^|,)from=([^,\s]+)", value)
            for ref in refs:
                source = df.stage_named(ref)
                if source is not None and source.index != stage.index:
                    used.setdefault(source.index, ins.line)
    return used


def _check_cross_compile(check: _Check) -> None:
    consumers = _consumers(check.df)
    for stage in check.df.stages:
        if stage.index not in consumers:
            continue
        compiles = [
            (ins, m)
            for ins in stage.instructions
            if ins.keyword in ("RUN", "ENV")
            for m in [_COMPILERS.search(ins.text)]
            if m
        ]
        if not compiles:
            continue
        ins, match = compiles[0]
        what = f"`{match.group(0).strip()}`"
        pin = stage.platform or ""
        if "BUILDPLATFORM" in pin:
            native = any(_NATIVE_COMPILERS.search(i.text) for i, _ in compiles)
            aware = any(re.search(r"TARGET(?:ARCH|OS|PLATFORM|VARIANT)", i.text) for i in stage.instructions)
            if native and not aware:
                check.add(
                    "build-stage-ignores-target",
                    ins.line_at(match.start()),
                    f"stage {stage.label} runs on the build machine (--platform={pin}) and compiles ({what}) "
                    "without TARGETOS/TARGETARCH: every variant gets the build machine's binary "
                    "(exec format error on the others)",
                    "`ARG TARGETOS TARGETARCH` in the stage, then cross-compile for them, "
                    "e.g. GOOS=$TARGETOS GOARCH=$TARGETARCH go build",
                )
        elif not pin:
            check.add(
                "missing-buildplatform",
                stage.line,
                f"stage {stage.label} compiles ({what}, line {ins.line_at(match.start())}) and line "
                f"{consumers[stage.index]} copies from it: without --platform=$BUILDPLATFORM it runs "
                "under emulation for every foreign platform (about 10x slower)",
                "FROM --platform=$BUILDPLATFORM …, then cross-compile for TARGETOS/TARGETARCH",
            )


def _check_workdir_copy(check: _Check) -> None:
    for stage in check.df.stages:
        for ins in stage.instructions:
            if ins.keyword != "RUN":
                continue
            script = ins.text
            if ins.exec_form:
                script = ins.exec_form[-1] if _SHELLS.get(_program(ins.exec_form[0])) else " ".join(ins.exec_form)
            hits = [
                (off, _program(word))
                for off, word, _ in command_words(script)
                if _program(word) in ("mkdir", "md", "cp", "copy", "xcopy")
            ]
            if not hits:
                continue
            offset, first = hits[0]
            kinds = {p for _, p in hits}
            advice = []
            if kinds & {"mkdir", "md"}:
                advice.append("WORKDIR creates folders on every OS")
            if kinds & {"cp", "copy", "xcopy"}:
                advice.append("COPY (or COPY --from=stage) copies on every OS")
            line = ins.line_at(offset) if not ins.exec_form else ins.line_of(first)
            shown = " and ".join(f"`{k}`" for k in sorted(kinds))
            verb = "differs" if len(kinds) == 1 else "differ"
            check.add(
                "prefer-workdir-copy", line, f"{shown} in RUN {verb} between Linux and Windows", "; ".join(advice)
            )


def _apply_suppressions(text: str, df: Dockerfile, findings: list[Finding]) -> list[Finding]:
    """`# farm-lint: ignore=rule,…` silences the next instruction; `ignore-file=` the file."""
    whole: set[str] = set()
    by_line: dict[int, set[str]] = {}
    lines = text.splitlines()
    starts = sorted(ins.line for ins in df.instructions)
    ranges = {ins.line: max([ln for _, ln in ins.spans] + [ins.line]) for ins in df.instructions}
    for number, line in enumerate(lines, start=1):
        match = _SUPPRESS.search(line) if line.lstrip().startswith("#") else None
        if not match:
            continue
        rules = {r.strip() for r in match.group(2).split(",") if r.strip()}
        if match.group(1):
            whole |= rules
            continue
        following = next((s for s in starts if s > number), None)
        if following is not None:
            for ln in range(following, ranges[following] + 1):
                by_line.setdefault(ln, set()).update(rules)
    return [f for f in findings if f.rule not in whole and f.rule not in by_line.get(f.line, set())]


# --------------------------------------------------------------------------- files and targets


@dataclass(frozen=True)
class Subject:
    """One Dockerfile to lint, and what it is built for."""

    path: Path
    platform: str | None = None  # one platform's Dockerfile (a farm target's `dockerfiles` key)
    platforms: tuple[str, ...] = ()  # what a multi-arch Dockerfile is built for
    build_args: tuple[tuple[str, str], ...] = ()
    origin: str = ""  # 'target "app"', or "" for a path given on the command line


@dataclass(frozen=True)
class Report:
    """The findings of one `farm lint` run."""

    subjects: tuple[Subject, ...]
    findings: tuple[Finding, ...]

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
        }


_DOCKERFILE_NAME = re.compile(r"^(?:dockerfile|containerfile)(?:[._-].+)?$|.+\.(?:dockerfile|containerfile)$", re.I)
_SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "venv"})


def find_dockerfiles(folder: Path) -> list[Path]:
    """Every Dockerfile under `folder` (Dockerfile, Dockerfile.*, *.Dockerfile), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        found += [Path(root) / f for f in sorted(files) if is_dockerfile_name(f)]
    return found


# Files named like Dockerfiles that are something else (code, docs, templates, config).
_NOT_DOCKERFILES = frozenset(
    "dockerignore md rst txt py toml json yml yaml ini cfg sh ps1 go rs js ts lock bak orig swp "
    "j2 jinja tmpl tpl template in html xml".split()
)


def is_dockerfile_name(name: str) -> bool:
    """Dockerfile, Dockerfile.linux-arm64, app.Dockerfile, Containerfile; not dockerfile.py."""
    if not _DOCKERFILE_NAME.match(name):
        return False
    lower = name.lower()
    if lower.endswith((".dockerfile", ".containerfile")) or "." not in lower:
        return True
    return lower.rsplit(".", 1)[1] not in _NOT_DOCKERFILES


def subjects_for_paths(paths: Sequence[str], *, platforms: Sequence[str] = ()) -> list[Subject]:
    """Subjects for files and folders given on the command line."""
    subjects = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files = find_dockerfiles(path)
            if not files:
                raise UsageError(
                    f"no Dockerfile in folder {text}",
                    hint="Dockerfiles are named Dockerfile, Dockerfile.* or *.Dockerfile",
                )
            subjects += [Subject(f, platforms=tuple(platforms)) for f in files]
        elif path.is_file():
            subjects.append(Subject(path, platforms=tuple(platforms)))
        else:
            raise UsageError(f"no such file or folder: {text}")
    return subjects


def subjects_for_targets(config: Any, names: Sequence[str] = ()) -> list[Subject]:
    """Subjects for a farm file's targets (all of them when `names` is empty)."""
    targets = {t.name: t for t in config.targets}
    unknown = [n for n in names if n not in targets]
    if unknown:
        known = ", ".join(targets) or "none"
        raise UsageError(
            f'no file, folder or target named "{unknown[0]}" (targets in {config.file}: {known})',
            hint="give a Dockerfile, a folder, or a target name of the farm file (-f)",
        )
    subjects = []
    for name in names or list(targets):
        target = targets[name]
        args = tuple(sorted(target.args.items()))
        origin = f'target "{name}"'
        for platform, path in sorted(target.dockerfiles.items()):
            subjects.append(Subject(Path(path), platform=platform, build_args=args, origin=origin))
        if target.dockerfile is not None or not (target.dockerfiles or target.sources):
            path = Path(target.dockerfile) if target.dockerfile else Path(target.context) / "Dockerfile"
            subjects.append(Subject(path, platforms=tuple(target.platforms), build_args=args, origin=origin))
    for subject in subjects:
        if not subject.path.is_file():
            raise UsageError(
                f"{subject.origin}: Dockerfile {subject.path} not found", hint=f"fix the path in {config.file}"
            )
    return subjects


def collect_subjects(args: Sequence[str], *, farm_file: Path, platforms: Sequence[str] = ()) -> list[Subject]:
    """What `farm lint ARGS` lints: existing files and folders as paths, other words as targets
    of the farm file; every target when there are no ARGS."""
    for platform in platforms:
        parse_platform(platform, "--platform")  # refuse an unknown one before anything else
    paths = [a for a in args if Path(a).exists()]
    names = [a for a in args if not Path(a).exists()]
    subjects = subjects_for_paths(paths, platforms=platforms)
    if names and not Path(farm_file).exists():
        raise UsageError(
            f"no such file or folder: {names[0]}",
            hint=f"nor a target: there is no farm file {farm_file} (-f) to look it up in",
        )
    if names or not args:
        from buildkit_farm.farmfile.load import load_config

        subjects += subjects_for_targets(load_config(farm_file), names)
    return subjects


def read_dockerfile(path: Path) -> str:
    """The Dockerfile's text; UsageError when it can't be read."""
    try:
        return path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff")
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None


def display_path(path: Path) -> str:
    """The path relative to the current folder when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def lint_subjects(
    subjects: Sequence[Subject],
    *,
    inspect: Callable[[str], Any] | None = None,
    display: Callable[[Path], str] = display_path,
) -> Report:
    """Lint every subject; the same finding from two targets sharing a file is kept once."""
    findings: dict[tuple, Finding] = {}
    for subject in subjects:
        text = read_dockerfile(subject.path)
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
    return Report(subjects=tuple(subjects), findings=tuple(ordered))


def render_text(report: Report) -> str:
    """One line per finding, then a summary line."""
    lines = [f.render() for f in report.findings]
    count = len({s.path for s in report.subjects})
    noun = "Dockerfile" if count == 1 else "Dockerfiles"
    if report.findings:
        parts = [f"{report.count(s)} {s}{'' if report.count(s) == 1 else 's'}" for s in SEVERITIES]
        lines.append(f"{count} {noun}: {', '.join(parts)}")
    else:
        lines.append(f"{count} {noun}: no findings")
    return "\n".join(lines)
