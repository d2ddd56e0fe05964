"""OS-specific syntax in Dockerfile instructions: Linux shell words (`uname`, `apk add`, `/bin/sh`)
and Windows ones (`cmd /S /C`, `%VAR%`, `C:\\`, cmdlets), read under the shell the stage uses
(sh, cmd, powershell, pwsh). The rules that judge them live in `lint/rules.py`. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from buildkit_farm.lint.dockerfile import Instruction


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
SHELLS = {
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
    # `app.exe`, `C:\\tools\\x.bat`; not `/out/registry.exe`, a Windows binary cross-built on Linux.
    (re.compile(r"(?i)(?<![\w./-])[\w\\.-]+\.(?:exe|bat|ps1)(?![\w.-])"), True),
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


def program_name(word: str) -> str:
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
        program = program_name(word)
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
        if words and program_name(words[0]) in _TEMPLATE_TOOLS:
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
    program = program_name(argv[0])
    where = lambda off, word: ins.line_of(json.dumps(word)[1:-1])  # noqa: E731
    found: list[Signal] = []
    runs_as = SHELLS.get(program)
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
        return SHELLS.get(program_name(ins.exec_form[0]), "sh")
    return None
