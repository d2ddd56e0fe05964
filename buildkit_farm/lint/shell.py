"""OS-specific syntax in Dockerfile instructions: Linux shell words (`uname`, `apk add`, `/bin/sh`)
and Windows ones (`cmd /S /C`, `%VAR%`, `C:\\`, cmdlets), read under the shell the stage uses
(sh, cmd, powershell, pwsh). The rules that judge them live in `lint/rules.py`. Pure.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from buildkit_farm.lint.dockerfile import Instruction, clip


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
# (pattern, also under pwsh, needles): a pattern runs only when one of its needles is in the
# lowered text; `in` is far faster than `re` with a lookbehind, on a 100k-line RUN.
_CMDLET_VERBS = "Get|Set|New|Remove|Invoke|Expand|Copy|Move|Start|Stop|Write|Add|Out|Test|Install|Import"
_WINDOWS_PATTERNS: tuple[tuple[re.Pattern, bool, tuple[str, ...]], ...] = (
    (_PERCENT_VARIABLE, True, ("%",)),
    (re.compile(r"(?<![A-Za-z0-9])[A-Za-z]:\\"), True, (":\\",)),
    (
        re.compile(r"(?i)(?<![\w-])(?:dir|del|rd|rmdir|copy|xcopy|move|md|mkdir|type|attrib)\s+/[a-z]\b"),
        True,
        ("dir", "del", "rd", "copy", "move", "md", "type", "attrib"),
    ),
    (re.compile(r"(?i)(?<![\w-])cmd(?:\.exe)?\s+/[sck]\b"), True, ("cmd",)),
    (re.compile(r"(?i)(?<![\w-])powershell(?:\.exe)?(?![\w-])"), True, ("powershell",)),
    # `app.exe`, `C:\\tools\\x.bat`; not `/out/registry.exe`, a Windows binary cross-built on Linux.
    (re.compile(r"(?i)(?<![\w./-])[\w\\.-]+\.(?:exe|bat|ps1)(?![\w.-])"), True, (".exe", ".bat", ".ps1")),
    (re.compile(r"\$env:[A-Za-z_]\w*"), False, ("$env:",)),
    (
        re.compile(rf"(?<![\w-])(?:{_CMDLET_VERBS})-[A-Z][A-Za-z]+"),
        False,
        tuple(f"{verb.lower()}-" for verb in _CMDLET_VERBS.split("|")),
    ),
)
_LINUX_PATTERNS: tuple[tuple[re.Pattern, tuple[str, ...]], ...] = (
    (re.compile(r"(?<![\w-])uname(?![\w-])"), ("uname",)),
    (re.compile(r"(?<![\w.~-])/(?:usr/(?:local/)?)?s?bin/[\w.+-]+"), ("bin/",)),
    (re.compile(r"(?<![\w-])(?:ba)?sh\s+-c(?![\w-])"), ("sh",)),
    (
        re.compile(r"(?<![\w-])(?:apk|apt-get|apt|yum|dnf)\s+(?:add|install|update|upgrade|del|remove)\b"),
        ("apk", "apt", "yum", "dnf"),
    ),
    (re.compile(r"(?<![\w-])mkdir\s+-p(?![\w-])"), ("mkdir",)),
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_WORD = re.compile(r"\S+")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SHELL_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=1024)
def program_name(word: str) -> str:
    word = word.strip("\"'")
    base = word[max(word.rfind("/"), word.rfind("\\")) + 1 :].lower()
    return base[:-4] if base.endswith(".exe") else base


_SEPARATOR = re.compile(r"\"[^\"]*(?:\"|\Z)|'[^']*(?:'|\Z)|&&|\|\||[;|&\n()]")
_QUOTED = re.compile(r"\"[^\"]*(?:\"|\Z)|'[^']*(?:'|\Z)")
_PER_PATTERN = 8  # matches of one pattern kept per instruction: a finding names a few, not thousands


@functools.lru_cache(maxsize=4)  # the same script is read for command words and for templates
def split_commands(script: str) -> tuple[tuple[int, str], ...]:
    """The simple commands of a shell line, each with its offset (quotes respected)."""
    commands: list[tuple[int, str]] = []
    start = 0
    for match in _SEPARATOR.finditer(script):
        if match.group(0)[0] in "\"'":
            continue  # a quoted string: its separators are text
        commands.append((start, script[start : match.start()]))
        start = match.end()
    commands.append((start, script[start:]))
    return tuple((off, text) for off, text in commands if text.strip())


def command_words(script: str) -> list[tuple[int, str, str]]:
    """(offset, word, the rest) for the command word of each simple command."""
    result = []
    for offset, text in split_commands(script):
        parts = text.split(None, 1)
        word = parts[0]
        if word not in _PREFIX_WORDS and not _ASSIGNMENT.match(word):  # the usual case, without a regex walk
            result.append((offset + text.index(word), word, parts[1] if len(parts) > 1 else ""))
            continue
        for match in _WORD.finditer(text):
            word = match.group(0)
            if word in _PREFIX_WORDS or _ASSIGNMENT.match(word):
                continue
            result.append((offset + match.start(), word, text[match.end() :]))
            break
    return result


def _word_signals(script: str, shell: str, where: Callable[[int, str], int]) -> list[Signal]:
    """Signals from the command word of each simple command in a shell script (a few per OS)."""
    found: list[Signal] = []
    kept = {"windows": 0, "linux": 0}
    for offset, word, rest in command_words(script):
        program = program_name(word)
        if program in _WINDOWS_PROGRAMS and not (program == "md" and rest.strip().startswith("-")):
            os_name = "windows"
        elif (
            program in _LINUX_PROGRAMS
            or word.startswith("./")
            and word.endswith(".sh")
            or program in _LINUX_ALIASED
            and shell not in ("powershell", "pwsh")
        ):
            os_name = "linux"
        else:
            continue
        if kept[os_name] < _PER_PATTERN:
            kept[os_name] += 1
            found.append(Signal(os_name, clip(word), where(offset, word)))
    if shell == "cmd":  # `$VAR` means nothing to cmd
        for match in itertools.islice(_SHELL_VARIABLE.finditer(script), _PER_PATTERN):
            found.append(Signal("linux", clip(match.group(0)), where(match.start(), match.group(0))))
    return found


_TEMPLATE_TOOLS = frozenset("sed awk gawk perl printf envsubst".split())


def _template_spans(script: str) -> list[tuple[int, int]]:
    """Where `%NAME%` is text, not a variable, in a sh script: single quotes, and the
    arguments of text tools (sed, awk, printf…)."""
    spans: list[tuple[int, int]] = []
    for match in _QUOTED.finditer(script):
        quoted = match.group(0)
        if quoted[0] == "'" and len(quoted) > 1 and quoted.endswith("'"):
            spans.append((match.start(), match.end() - 1))
    for offset, text in split_commands(script):
        words = text.split()
        if words and program_name(words[0]) in _TEMPLATE_TOOLS:
            spans.append((offset, offset + len(text)))
    return spans


def _covering(spans: list[tuple[int, int]]) -> Callable[[int], bool]:
    """A test `offset in any span`, in log time (a script may have thousands of quoted strings)."""
    ordered = sorted(spans)
    starts = [a for a, _ in ordered]
    reach: list[int] = []  # the furthest end among the spans starting up to here
    for _, end in ordered:
        reach.append(max(end, reach[-1]) if reach else end)

    def inside(offset: int) -> bool:
        index = bisect_right(starts, offset) - 1
        return index >= 0 and offset < reach[index]

    return inside


def _pattern_signals(text: str, shell: str, where: Callable[[int, str], int]) -> list[Signal]:
    """Signals from OS-specific syntax anywhere in the text (`%VAR%`, `C:\\`, `/bin/sh`…)."""
    found: list[Signal] = []
    inside_template: Callable[[int], bool] | None = None
    lowered = text.translate(_ASCII_LOWER)
    for pattern, under_pwsh, needles in _WINDOWS_PATTERNS:
        if shell == "pwsh" and not under_pwsh or not any(needle in lowered for needle in needles):
            continue
        kept = 0
        for match in pattern.finditer(text):
            if pattern is _PERCENT_VARIABLE and shell == "sh":
                inside_template = inside_template or _covering(_template_spans(text))
                if inside_template(match.start()):
                    continue  # a placeholder such as sed 's/%VERSION%/1.2/', not cmd's variable
            found.append(Signal("windows", clip(match.group(0)), where(match.start(), match.group(0))))
            kept += 1
            if kept == _PER_PATTERN:
                break
    for pattern, needles in _LINUX_PATTERNS:
        if not any(needle in lowered for needle in needles):
            continue
        for match in itertools.islice(pattern.finditer(text), _PER_PATTERN):
            found.append(Signal("linux", clip(match.group(0)), where(match.start(), match.group(0))))
    return found


def instruction_signals(ins: Instruction, shell: str) -> list[Signal]:
    """The OS-specific syntax in one instruction, run under `shell` (sh, cmd, powershell, pwsh)."""
    if ins.keyword in ("WORKDIR", "ENV", "VOLUME", "COPY", "ADD"):
        # Paths only: a drive letter is Windows syntax anywhere.
        return [
            Signal("windows", clip(m.group(0)), ins.line_at(m.start()))
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
        found.append(Signal("windows", clip(argv[0]), where(0, argv[0])))
    elif program in _LINUX_PROGRAMS or program in _LINUX_ALIASED or argv[0].startswith("/"):
        found.append(Signal("linux", clip(argv[0]), where(0, argv[0])))
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
