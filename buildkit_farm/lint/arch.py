"""The rules about CPU architectures inside a build: hard-coded architectures, platform ARGs,
stages that compile for the wrong machine, and RUN steps that differ by OS. Pure.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from buildkit_farm.lint.dockerfile import Dockerfile, Instruction, Stage, arg_declarations, env_declarations
from buildkit_farm.lint.findings import Check
from buildkit_farm.lint.names import (
    ARCH_WORDS,
    STRICT_ARCH,
    ArchWord,
    Target,
    arch_key,
    arch_words,
    parse_platform_quiet,
)
from buildkit_farm.lint.shell import SHELLS, command_words, program_name
from buildkit_farm.lint.switches import PLATFORM_AWARE, platform_aware

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
_PLATFORM_ARG_USE = re.compile(r"\$\{?(" + "|".join(_PLATFORM_ARGS) + r")\b|%(" + "|".join(_PLATFORM_ARGS) + r")%")
# Word patterns are written without a leading lookbehind (it makes `re` try every position of a
# 100k-line RUN); `_word_search` checks the character before instead.
_COMPILERS = re.compile(
    r"(?:go\s+(?:build|install)|cargo\s+(?:build|install)|rustc|gcc|g\+\+|clang|clang\+\+|cc|c\+\+"
    r"|dotnet\s+(?:publish|build)|zig\s+(?:build|cc)|mvn|gradle|javac)(?![\w-])|GOARCH="
)
_NATIVE_COMPILERS = re.compile(r"(?:go|cargo|rustc|gcc|g\+\+|clang|clang\+\+|cc|c\+\+|dotnet|zig)(?![\w-])|GOARCH=")
WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _word_search(pattern: re.Pattern, text: str) -> re.Match | None:
    """The first match of `pattern` that starts a word (not preceded by a letter, digit, _ or -)."""
    for match in pattern.finditer(text):
        if match.start() == 0 or text[match.start() - 1] not in WORD_CHARS:
            return match
    return None


def _from_arg_names(df: Dockerfile) -> set[str]:
    names: set[str] = set()
    for stage in df.stages:
        for text in (stage.base, stage.platform or ""):
            names.update(m.group(1) or m.group(2) for m in re.finditer(r"\$\{?(\w+)|\$(\w+)", text))
    return names


ARCH_KEYS = frozenset(arch_key(w) for w in ARCH_WORDS)
_URL = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://\S+", re.I)
# Files read for what they say (a version, a checksum), not installed: an index, a checksum, a signature.
_METADATA = re.compile(
    r"APKINDEX.*|Packages(?:\.\w+)?|Release|InRelease|SHA\d*SUMS?.*|checksums?.*|.*\.(?:json|txt|asc|sig|sha256|sha512|md5)",
    re.I,
)
_ARCH_FLAG = re.compile(r"--arch(?:=|\s+)(\S+)")
# A word inside a package name (`gcc-aarch64-linux-gnu`, `libseccomp-dev:arm64`): a cross toolchain.
_IN_PACKAGE = re.compile(r"[\w.+]-$|:$")
_CROSS_STAGE = re.compile(r"dpkg\s+--add-architecture|xx-|crossbuild-essential|-linux-gnu")
_VARIABLE_URL = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?[^\s\"']*")
_VARIABLE_USE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def platform_of(df: Dockerfile, stage: Stage) -> str:
    """The --platform a stage runs on as written, also when it comes from the stage it starts FROM."""
    return df.pins[stage.index]


_SCHEME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")
_NOT_SPACE = re.compile(r"\S+")


def _urls(text: str) -> list[tuple[int, int]]:
    """The spans `_URL` would find, from each `://` outwards (fast on a 100k-line RUN)."""
    spans: list[tuple[int, int]] = []
    index = text.find("://")
    while index >= 0:
        start = index
        while start > 0 and text[start - 1] in _SCHEME_CHARS and index - start < 32:
            start -= 1
        while start < index and not text[start].isalpha():
            start += 1  # a scheme starts with a letter
        rest = _NOT_SPACE.match(text, index + 3)
        if start < index and rest and (not spans or start >= spans[-1][1]):
            spans.append((start, rest.end()))
        index = text.find("://", index + 3)
    return spans


class _Places:
    """Where in one instruction's text things are fetched: URLs and `--arch` values (found once)."""

    def __init__(self, text: str, url_vars: frozenset[str] = frozenset()) -> None:
        self.urls: list[tuple[int, int, bool]] = []  # (start, end, read for a value)
        found = _urls(text)
        if url_vars:  # "${DOWNLOAD}/v1/tool_${ARCH}.deb", where ENV DOWNLOAD="https://…"
            found += [m.span() for m in _VARIABLE_URL.finditer(text) if m.group(1) in url_vars]
        for start, end in sorted(found):
            url = text[start:end].rstrip("\"')")
            value = bool(_METADATA.fullmatch(url.rsplit("/", 1)[-1])) or "$(" in _command_before(text, start)
            self.urls.append((start, end, value))
        self.url_starts = [start for start, _, _ in self.urls]
        self.flags = [(m.start(1), m.end(1)) for m in _ARCH_FLAG.finditer(text)]
        self.flag_starts = [start for start, _ in self.flags]

    def _url_at(self, offset: int) -> tuple[int, int, bool] | None:
        index = bisect_right(self.url_starts, offset) - 1
        if index >= 0 and offset < self.urls[index][1]:
            return self.urls[index]
        return None

    def fetches(self, offset: int) -> bool:
        """True inside a URL, or the value of an `--arch` option (apk, pacman)."""
        return self._url_at(offset) is not None or self.arch_option(offset)

    def arch_option(self, offset: int) -> bool:
        """True inside the value of an `--arch` option: packages installed for that arch."""
        index = bisect_right(self.flag_starts, offset) - 1
        return index >= 0 and offset < self.flags[index][1]

    def reads_a_value(self, offset: int) -> bool:
        """True inside a URL fetched for what it says, not to install: an index, a checksum, a
        signature, or a `$(curl …)` value (linuxserver reads the version from the x86_64 APKINDEX)."""
        url = self._url_at(offset)
        return url is not None and url[2]


def check_hard_coded_arch(check: Check) -> None:
    """hard-coded-arch (warning) anywhere; wrong-arch-binary (error) where the final image gets the file."""
    arch_vars, url_vars = _variables(check)
    flagged_vars: set[str] = set()
    for stage in check.df.stages:
        at = _StageFacts.of(check, stage)
        for ins in stage.instructions:
            if ins.keyword not in ("RUN", "ADD") or platform_aware(ins.text):
                continue
            places = _Places(ins.text, url_vars)
            _check_words(check, ins, places, at)
            if at.feeds_final and arch_vars:
                _check_arch_variables(check, ins, places, at, arch_vars, flagged_vars)
    flagged_vars |= _copy_sources(check, arch_vars)
    _declarations(check, flagged_vars)


@dataclass(frozen=True)
class _StageFacts:
    """What the rule needs to know of one stage."""

    in_final: bool
    feeds_final: bool  # the final image copies from it: `apk --arch x86_64 --root /out` there lands in the image
    cross: bool  # it runs on the build machine, or installs a cross toolchain
    own: frozenset[str]  # the arch it is pinned to
    where: str  # how messages name it ("" for the final image's own stages)

    @classmethod
    def of(cls, check: Check, stage: Stage) -> _StageFacts:
        final = check.final_chain
        in_final = stage.index in final
        pinned = parse_platform_quiet(stage.platform) if stage.platform and "$" not in stage.platform else None
        return cls(
            in_final=in_final,
            feeds_final=in_final or bool(check.df.users.get(stage.index, set()) & final),
            cross="BUILDPLATFORM" in platform_of(check.df, stage)
            or any(_CROSS_STAGE.search(i.text) for i in stage.instructions),
            own=frozenset({pinned.arch} if pinned and pinned.arch else ()),
            where="" if in_final else f"stage {stage.label}, which the final image copies from,",
        )


def _check_words(check: Check, ins: Instruction, places: _Places, at: _StageFacts) -> None:
    """Architecture words written into a RUN or ADD: an error where the final image gets the file."""
    words = _foreign_words(check, ins.text, at.cross)
    words = [m for m in words if arch_key(m.group(1)) not in at.own and not places.reads_a_value(m.start())]
    if len({arch_key(m.group(1)) for m in words}) > 1:
        return  # every architecture's file fetched on purpose (a downloads page, an installer's payload)
    fetched = [
        m
        for m in words
        if at.in_final and places.fetches(m.start()) or at.feeds_final and places.arch_option(m.start())
    ]
    if fetched:
        _wrong_binary(check, ins, fetched[0].group(1), ins.line_at(fetched[0].start()), where=at.where)
    elif words:
        _warn(check, ins, words, ins.line_at(words[0].start()))


def _check_arch_variables(
    check: Check, ins: Instruction, places: _Places, at: _StageFacts, arch_vars: dict[str, str], flagged: set[str]
) -> None:
    """A variable holding an architecture word, used where the final image gets the file (each flagged once)."""
    for use in _VARIABLE_USE.finditer(ins.text):
        name = use.group(1)
        reaches = at.in_final and places.fetches(use.start()) or places.arch_option(use.start())
        if name in arch_vars and name not in flagged and reaches:
            flagged.add(name)
            _wrong_binary(check, ins, arch_vars[name], ins.line_at(use.start()), via=name, where=at.where)


def _foreign_words(check: Check, text: str, cross: bool) -> list[ArchWord]:
    """Architecture words in `text` that are not every variant's own (and not a cross toolchain's package)."""
    own = check.own_arches
    words = [m for m in arch_words(text) if arch_key(m.word) not in own]
    if cross:
        words = [m for m in words if not _is_package_word(text, m)]
    return words


def _is_package_word(text: str, match: ArchWord) -> bool:
    before = text[max(0, match.start() - 40) : match.start()]
    after = text[match.finish : match.finish + 1]
    if before.rstrip().endswith("--add-architecture"):
        return True  # dpkg's foreign architecture for a cross build
    return bool(_IN_PACKAGE.search(before)) or after in ("-", ":") or before.endswith(":")


def _command_before(text: str, offset: int) -> str:
    """The text of the simple command holding `offset`, up to it (`$(curl` reads a value, not a file)."""
    window = max(0, offset - 2000)  # a command longer than this is not worth reading back
    start = max(text.rfind(sep, window, offset) for sep in (";", "&", "\n", "|"))
    return text[max(start + 1, window) : offset]


def _variables(check: Check) -> tuple[dict[str, str], frozenset[str]]:
    """ARG/ENV names whose value is one architecture (`ARG ARCH=x86_64`): name -> the word; and the
    names whose value is a URL (`ENV DOWNLOAD=https://…`)."""
    found: dict[str, str] = {}
    urls: set[str] = set()
    instructions = list(check.df.global_args) + [i for s in check.df.stages for i in s.instructions]
    for ins in instructions:
        if ins.keyword == "ARG":
            pairs = [(n, d or "") for n, d in arg_declarations(ins.text)]
        elif ins.keyword == "ENV":
            pairs = env_declarations(ins.text)
        else:
            continue
        for name, value in pairs:
            if _URL.match(value.strip()):
                urls.add(name)
            match = STRICT_ARCH.fullmatch(value.strip())
            if match and arch_key(match.group(1)) not in check.own_arches and not PLATFORM_AWARE.search(value):
                found[name] = match.group(1)
    return found, frozenset(urls)


def _declarations(check: Check, flagged_vars: set[str]) -> None:
    """hard-coded-arch on ARG/ENV values (not those FROM uses, nor one already shown as wrong-arch-binary)."""
    used_by_from = _from_arg_names(check.df)
    candidates = [i for i in check.df.global_args if not {n for n, _ in arg_declarations(i.text)} & used_by_from]
    candidates += [i for s in check.df.stages for i in s.instructions if i.keyword in ("ENV", "ARG")]
    for ins in candidates:
        if ins.keyword == "ARG":
            pairs = [(n, d or "") for n, d in arg_declarations(ins.text)]
        else:
            pairs = env_declarations(ins.text)
        text = " ".join(value for name, value in pairs if name not in flagged_vars)
        if not text.strip() or platform_aware(ins.text):
            continue
        words = _foreign_words(check, text, cross=False)
        if words:
            _warn(check, ins, words, ins.line_of(words[0].group(1)))


def _copy_sources(check: Check, arch_vars: dict[str, str]) -> set[str]:
    """COPY/ADD source paths naming one architecture (`/src/bin/linux-amd64/app`), also through a
    variable; returns the variables shown so."""
    final = check.final_chain
    shown_vars: set[str] = set()
    for stage in check.df.stages:
        hits: list[tuple[Instruction, ArchWord, str]] = []
        for ins in stage.instructions:
            if ins.keyword not in ("COPY", "ADD") or "<<" in ins.text or platform_aware(ins.text):
                continue
            sources = ins.exec_form[:-1] if ins.exec_form else tuple(ins.text.split()[:-1])
            for source in sources:
                if _URL.match(source) and ins.keyword == "ADD":
                    continue  # an ADD URL: the RUN/ADD download check above
                hits += [(ins, m, source) for m in _foreign_words(check, source, cross=False)]
                hits += [  # `.build/linux-${ARCH}/app` where ARG ARCH="amd64": the word is `$ARCH`
                    (ins, ArchWord(m.start(), m.end(), "$" + m.group(1)), source)
                    for m in _VARIABLE_USE.finditer(source)
                    if m.group(1) in arch_vars
                ]
        words = [(m.word[1:], arch_vars[m.word[1:]]) if m.word.startswith("$") else ("", m.word) for _, m, _ in hits]
        if len({arch_key(word) for _, word in words}) != 1:
            continue  # none, or every architecture's file collected on purpose (`app-amd64`, `app-arm64`)
        (ins, match, source), (via, word) = hits[0], words[0]
        line = ins.line_of(source)
        if stage.index in final:
            _wrong_binary(check, ins, word, line, via=via)
            shown_vars.add(via)
        elif not via:
            _warn(check, ins, [match], line)
    return shown_vars


def _wrong_binary(check: Check, ins: Instruction, word: str, line: int, *, via: str = "", where: str = "") -> None:
    through = f" (through ${via})" if via else ""
    check.add(
        "wrong-arch-binary",
        line,
        f"{ins.keyword} in {where or 'the final image'} takes the `{word}` build{through} on every platform: "
        "the other variants get a binary their CPU cannot run (exec format error)",
        "`ARG TARGETARCH` in the stage and use $TARGETARCH (map it when a tool wants x86_64/aarch64)",
    )


def _warn(check: Check, ins: Instruction, words: list[ArchWord], line: int) -> None:
    shown = ", ".join(dict.fromkeys(f"`{m.group(1)}`" for m in words))
    uname_style = any(m.group(1).lower() in ("x86_64", "aarch64", "armv7l", "i686") for m in words)
    fix = "use `ARG TARGETARCH` (or TARGETPLATFORM) in the stage instead" + (
        "; map it when a tool wants uname names (amd64→x86_64, arm64→aarch64)" if uname_style else ""
    )
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


_CROSS_TARGET = re.compile(r"TARGET(?:ARCH|OS|PLATFORM|VARIANT)|GOARCH=(?![\"']?\$\{?BUILDARCH)|--target[= ]")


def check_cross_compile(check: Check) -> None:
    consumers = check.df.copied_from
    for stage in check.df.stages:
        if stage.index not in consumers:
            continue
        compiles = [
            (ins, m)
            for ins in stage.instructions
            if ins.keyword in ("RUN", "ENV")
            for m in [_word_search(_COMPILERS, ins.text)]
            if m
        ]
        if not compiles:
            continue
        ins, match = compiles[0]
        what = f"`{match.group(0).strip()}`"
        pin = platform_of(check.df, stage)
        if "BUILDPLATFORM" in pin:
            native = any(_word_search(_NATIVE_COMPILERS, i.text) for i, _ in compiles)
            # GOARCH= or --target set to anything but the build machine's: it cross-compiles on
            # purpose (a release stage building every OS/arch in a loop), not for this machine.
            aware = any(_CROSS_TARGET.search(i.text) for i in stage.instructions)
            users = check.df.users.get(stage.index, set())
            for_builder = all("BUILDPLATFORM" in platform_of(check.df, check.df.stages[u]) for u in users)
            if native and not aware and not for_builder:  # a tool the build machine itself runs is fine
                check.add(
                    "build-stage-ignores-target",
                    ins.line_at(match.start()),
                    f"stage {stage.label} runs on the build machine (--platform={pin}) and compiles ({what}) "
                    "without TARGETOS/TARGETARCH: every variant gets the build machine's binary "
                    "(exec format error on the others)",
                    "`ARG TARGETOS TARGETARCH` in the stage, then cross-compile for them, "
                    "e.g. GOOS=$TARGETOS GOARCH=$TARGETARCH go build",
                )
        elif not pin and not check.own_arches:  # one architecture built: nothing runs emulated for long
            check.add(
                "missing-buildplatform",
                stage.line,
                f"stage {stage.label} compiles ({what}, line {ins.line_at(match.start())}) and line "
                f"{consumers[stage.index]} copies from it: without --platform=$BUILDPLATFORM it runs "
                "under emulation for every foreign platform (about 10x slower)",
                "FROM --platform=$BUILDPLATFORM …, then cross-compile for TARGETOS/TARGETARCH",
            )


def check_workdir_copy(check: Check) -> None:
    """The book's lab hint, for a Dockerfile meant for Linux and Windows (the target builds both, or
    the file mixes their syntax, as the book's lab does): on one OS, mkdir and cp are fine."""
    mixed = any(f.rule == "mixed-os-syntax" for f in check.findings)
    if not ({"linux", "windows"} <= check.oses or mixed):
        return
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


def check_pinned_stage(check: Check, stage: Stage, pinned: Target | None) -> None:
    """A multi-arch Dockerfile's stage pinned to a literal platform (`FROM --platform=linux/amd64`).

    The final image built on it: every variant is that platform's (arch-specific-from). A stage
    only copied from: fine when the file pins one stage per architecture and collects them all;
    a native compile copied into the final image is a wrong-arch binary; else a warning.
    """
    where = f"--platform={stage.platform}"
    if stage.index in check.final_chain:
        check.add(
            "arch-specific-from",
            stage.line,
            f"FROM {where} pins stage {stage.label}, which the final image is built on, to one platform",
            "drop --platform so each platform gets its own variant; "
            "a stage that cross-compiles takes --platform=$BUILDPLATFORM",
        )
        return
    consumers = check.df.copied_from
    if stage.index not in consumers:
        return  # never copied from: it does not reach any image
    if len(check.pinned_arches) > 1:
        return  # one stage per architecture, every variant collects them all (`COPY --from=x-amd64`...)
    arch = pinned.arch if pinned and pinned.arch else stage.platform
    if pinned and pinned.arch and pinned.arch in check.own_arches:
        return
    compiles = next(
        (i for i in stage.instructions if i.keyword == "RUN" and _word_search(_NATIVE_COMPILERS, i.text)), None
    )
    aware = any(re.search(r"TARGET(?:ARCH|OS|PLATFORM)|GOARCH=|--target", i.text) for i in stage.instructions)
    if compiles is not None and not aware and consumers[stage.index] in check.final_lines:
        check.add(
            "wrong-arch-binary",
            consumers[stage.index],
            f"the final image copies from stage {stage.label}, pinned with {where}, which compiles "
            f"natively (line {compiles.line}): every variant gets a {arch} binary (exec format error elsewhere)",
            "FROM --platform=$BUILDPLATFORM and cross-compile for TARGETOS/TARGETARCH, or drop --platform",
        )
        return
    installs = next((i for i in stage.instructions if i.keyword == "RUN" and _word_search(_INSTALLS, i.text)), None)
    if installs is None:
        return  # arch-independent work (a JS bundle, docs): the same on every platform
    check.add(
        "pinned-stage",
        stage.line,
        f"stage {stage.label} is pinned with {where} and line {consumers[stage.index]} copies from it: "
        f"what it installs (line {installs.line}) is {arch}'s on every platform; fine only if the files "
        "copied are arch-independent",
        "for binaries: FROM --platform=$BUILDPLATFORM and cross-compile for TARGETARCH; or one stage per arch",
    )


_INSTALLS = re.compile(r"(?:apk\s+add|apt-get\s+install|apt\s+install|dnf\s+install|yum\s+install|curl|wget)(?![\w-])")
