"""The rules about CPU architectures inside a build: hard-coded architectures, platform ARGs,
stages that compile for the wrong machine, and RUN steps that differ by OS. Pure.
"""

from __future__ import annotations

import re

from buildkit_farm.lint.dockerfile import Dockerfile, Instruction, arg_declarations, env_declarations
from buildkit_farm.lint.findings import Check
from buildkit_farm.lint.names import STRICT_ARCH, arch_key
from buildkit_farm.lint.shell import SHELLS, command_words, program_name

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


def _from_arg_names(df: Dockerfile) -> set[str]:
    names: set[str] = set()
    for stage in df.stages:
        for text in (stage.base, stage.platform or ""):
            names.update(m.group(1) or m.group(2) for m in re.finditer(r"\$\{?(\w+)|\$(\w+)", text))
    return names


def check_hard_coded_arch(check: Check) -> None:
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
        words = [m for m in STRICT_ARCH.finditer(text)]
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


def check_platform_args(check: Check) -> None:
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
            refs: list[str] = []
            source_ref = ins.flag("from")
            if ins.keyword in ("COPY", "ADD") and source_ref:
                refs.append(source_ref)
            for key, value in ins.flags:
                if key == "mount":
                    refs += re.findall(r"(?:^|,)from=([^,\s]+)", value)
            for ref in refs:
                source = df.stage_named(ref)
                if source is not None and source.index != stage.index:
                    used.setdefault(source.index, ins.line)
    return used


def check_cross_compile(check: Check) -> None:
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


def check_workdir_copy(check: Check) -> None:
    for stage in check.df.stages:
        for ins in stage.instructions:
            if ins.keyword != "RUN":
                continue
            script = ins.text
            if ins.exec_form:
                script = ins.exec_form[-1] if SHELLS.get(program_name(ins.exec_form[0])) else " ".join(ins.exec_form)
            hits = [
                (off, program_name(word))
                for off, word, _ in command_words(script)
                if program_name(word) in ("mkdir", "md", "cp", "copy", "xcopy")
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
