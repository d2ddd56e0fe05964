"""A Dockerfile, read the way BuildKit reads it, for `farm lint`.

Parser directives (`# escape=`), line continuations (with the file's escape character),
comment and blank lines inside continuations, heredocs, `--flag=value` options, JSON (exec)
and shell forms, stages (`FROM … AS name`) and the global `ARG`s before the first `FROM`.
Every instruction remembers the physical line of each piece of its text, so a finding
points at the line that holds the offending word, not only where the instruction starts.

Pure: reads text, never Docker. Not a full frontend: it keeps what lint needs.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

INSTRUCTIONS = frozenset(
    "ADD ARG CMD COPY ENTRYPOINT ENV EXPOSE FROM HEALTHCHECK LABEL MAINTAINER ONBUILD RUN "
    "SHELL STOPSIGNAL USER VOLUME WORKDIR".split()
)
# Instructions whose arguments may be a JSON array (the exec form).
_JSON_FORMS = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})
_FLAGGED = frozenset({"FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"})
_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=(.*)$")
_FLAG = re.compile(r"--([A-Za-z0-9-]+)(?:=(\S*))?\s*")
_KEYWORD = re.compile(r"(\S+)\s*")
_WORDS = re.compile(r"(?:[^\s\"']|\"[^\"]*(?:\"|\Z)|'[^']*(?:'|\Z))+")
_MOUNT_FROM = re.compile(r"(?:^|,)from=([^,\s]+)")
_NESTED = re.compile(r"\s*\[\s*\[")
_HEREDOC = re.compile(r"<<(-?)\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword, options and text (continuations joined)."""

    keyword: str  # upper case, e.g. "RUN"
    text: str  # after the keyword and its --flags
    line: int  # the line of the keyword (1-based)
    flags: tuple[tuple[str, str], ...] = ()  # (name, value) of each --name=value
    exec_form: tuple[str, ...] | None = None  # the JSON array, when the exec form is used
    # (offset in `text`, physical line) where each piece of `text` starts, ascending.
    spans: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    starts: tuple[int, ...] = field(default=(), repr=False, compare=False)  # the offsets of `spans`, for bisect

    def flag(self, name: str) -> str | None:
        """The value of `--name=value`, or None."""
        for key, value in self.flags:
            if key == name:
                return value
        return None

    def line_at(self, offset: int) -> int:
        """The physical line holding character `offset` of `text`."""
        if not self.spans:
            return self.line
        starts = self.starts or tuple(start for start, _ in self.spans)
        index = max(bisect_right(starts, offset) - 1, 0)
        return self.spans[index][1]

    def line_of(self, needle: str) -> int:
        """The physical line where `needle` first appears in `text` (else the keyword's)."""
        offset = self.text.find(needle)
        return self.line_at(offset) if offset >= 0 else self.line


@dataclass(frozen=True)
class Stage:
    """A build stage: its FROM line and the instructions up to the next FROM."""

    index: int
    name: str | None  # lower case, as BuildKit compares stage names
    base: str  # the image as written, e.g. "${BASE}" or "golang:1.22"
    image: str  # the image with global ARGs substituted (unknown ones left as written)
    platform: str | None  # the --platform flag as written
    line: int  # the FROM line
    parent: int | None  # index of the earlier stage this one starts FROM, if any
    instructions: tuple[Instruction, ...]

    @property
    def label(self) -> str:
        return f'"{self.name}"' if self.name else f"#{self.index}"


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile."""

    escape: str
    directives: tuple[tuple[str, str], ...]
    instructions: tuple[Instruction, ...]
    global_args: tuple[Instruction, ...]  # the ARGs before the first FROM
    stages: tuple[Stage, ...]
    problems: tuple[tuple[int, str], ...]  # (line, message): what BuildKit would refuse

    def variables(self, build_args: Mapping[str, str] | None = None) -> dict[str, str]:
        """Global ARG defaults, overridden by build args for the ARGs declared."""
        values: dict[str, str] = {}
        for arg in self.global_args:
            for name, default in arg_declarations(arg.text):
                if build_args and name in build_args:
                    values[name] = build_args[name]
                elif default is not None:
                    values[name] = substitute(default, values)
        return values

    def stage_named(self, ref: str) -> Stage | None:
        """The stage a `--from=` or `FROM` refers to (by name or index), if any."""
        ref = ref.lower()
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return self._by_name.get(ref)

    @cached_property
    def _by_name(self) -> dict[str, Stage]:
        named: dict[str, Stage] = {}
        for stage in self.stages:
            if stage.name:
                named.setdefault(stage.name, stage)
        return named

    @cached_property
    def users(self) -> dict[int, set[int]]:
        """Stage index -> the stages that copy or mount files from it."""
        users: dict[int, set[int]] = {}
        for stage, _, source in self._copies:
            users.setdefault(source, set()).add(stage)
        return users

    @cached_property
    def copied_from(self) -> dict[int, int]:
        """Stage index -> the first line that copies or mounts files from it."""
        first: dict[int, int] = {}
        for _, ins, source in self._copies:
            first.setdefault(source, ins.line)
        return first

    @cached_property
    def _copies(self) -> list[tuple[int, Instruction, int]]:
        found = []
        for stage in self.stages:
            for ins in stage.instructions:
                refs = [v for k, v in ins.flags if k == "from" and ins.keyword in ("COPY", "ADD")]
                refs += [r for k, v in ins.flags if k == "mount" for r in _MOUNT_FROM.findall(v)]
                for ref in refs:
                    source = self.stage_named(ref)
                    if source is not None and source.index != stage.index:
                        found.append((stage.index, ins, source.index))
        return found

    @cached_property
    def roots(self) -> tuple[int, ...]:
        """Per stage, the index of the stage its chain of `FROM earlier-stage` starts at."""
        roots: list[int] = []
        for stage in self.stages:  # a parent is always an earlier stage
            roots.append(roots[stage.parent] if stage.parent is not None else stage.index)
        return tuple(roots)

    @cached_property
    def pins(self) -> tuple[str, ...]:
        """Per stage, its --platform as written, or the one of the stage it starts FROM ("" if none)."""
        pins: list[str] = []
        for stage in self.stages:
            pins.append(stage.platform or (pins[stage.parent] if stage.parent is not None else ""))
        return tuple(pins)


def parse(text: str) -> Dockerfile:
    """Parse Dockerfile text. Never raises: what BuildKit would refuse goes to `problems`."""
    lines = text.splitlines()
    directives, start = _read_directives(lines)
    problems: list[tuple[int, str]] = []
    escape = dict(directives).get("escape", "\\")
    if escape not in ("\\", "`"):
        problems.append((1, f"escape directive must be \\ or `, not {escape!r}"))
        escape = "\\"
    instructions = _read_instructions(lines, start, escape, problems)
    global_args, stages = _split_stages(instructions, problems)
    return Dockerfile(
        escape=escape,
        directives=tuple(directives),
        instructions=tuple(instructions),
        global_args=tuple(global_args),
        stages=tuple(stages),
        problems=tuple(problems),
    )


def _read_directives(lines: list[str]) -> tuple[list[tuple[str, str]], int]:
    # Directives only count at the very top: the first other line ends them.
    found: list[tuple[str, str]] = []
    for index, line in enumerate(lines):
        match = _DIRECTIVE.match(line.strip())
        if not match or match.group(1).lower() not in _DIRECTIVES:
            return found, index
        found.append((match.group(1).lower(), match.group(2).strip()))
    return found, len(lines)


def _is_skippable(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _read_instructions(lines: list[str], start: int, escape: str, problems: list[tuple[int, str]]) -> list[Instruction]:
    result: list[Instruction] = []
    i = start
    while i < len(lines):
        if _is_skippable(lines[i]):
            i += 1
            continue
        first_line = i + 1
        pieces: list[tuple[str, int]] = []
        while i < len(lines):
            content = lines[i] if pieces else lines[i].lstrip()
            before = content.rstrip(" \t")
            if not before.endswith(escape):
                pieces.append((content, i + 1))
                i += 1
                break
            pieces.append((before[:-1], i + 1))
            i += 1
            # BuildKit drops comment and blank lines inside a continuation.
            while i < len(lines) and _is_skippable(lines[i]):
                i += 1
        i = _read_heredocs(_join(pieces)[0], lines, i, pieces)
        full, spans = _join(pieces)
        result.append(_make_instruction(full, spans, first_line, problems))
    return result


def _join(pieces: list[tuple[str, int]]) -> tuple[str, list[tuple[int, int]]]:
    # BuildKit glues continued lines together as they are (no separator).
    spans, offset, parts = [], 0, []
    for piece, line in pieces:
        spans.append((offset, line))
        parts.append(piece)
        offset += len(piece)
    return "".join(parts), spans


def _read_heredocs(full: str, lines: list[str], i: int, pieces: list[tuple[str, int]]) -> int:
    # `RUN <<EOF` … `EOF`: the body lines belong to the instruction.
    keyword = full.split(None, 1)[0].upper() if full.strip() else ""
    if keyword not in ("RUN", "COPY", "ADD"):
        return i
    for match in _HEREDOC.finditer(full):
        word, strip_tabs = match.group(3), bool(match.group(1))
        while i < len(lines):
            body = lines[i].lstrip("\t") if strip_tabs else lines[i]
            pieces.append(("\n" + lines[i], i + 1))
            i += 1
            if body.strip() == word:
                break
    return i


def _make_instruction(
    full: str, spans: list[tuple[int, int]], line: int, problems: list[tuple[int, str]]
) -> Instruction:
    match = _KEYWORD.match(full)
    keyword = match.group(1).upper() if match else ""
    offset = match.end() if match else 0
    if keyword not in INSTRUCTIONS:
        problems.append((line, f"unknown instruction {clip(match.group(1) if match else full)}"))
    flags: list[tuple[str, str]] = []
    if keyword in _FLAGGED:
        while full.startswith("--", offset):
            flag = _FLAG.match(full, offset)
            if not flag:
                break
            flags.append((flag.group(1).lower(), flag.group(2) or ""))
            offset = flag.end()
    text = full[offset:]
    exec_form = _exec_form(keyword, text)
    missing = _missing_arguments(keyword, text, exec_form) or (
        _healthcheck_problem(text) if keyword == "HEALTHCHECK" else None
    )
    if missing:
        problems.append((line, missing))
    shifted = tuple((max(start - offset, 0), ln) for start, ln in spans)
    return Instruction(
        keyword=keyword,
        text=text,
        line=line,
        flags=tuple(flags),
        exec_form=exec_form,
        spans=shifted,
        starts=tuple(start for start, _ in shifted),
    )


# What BuildKit's instruction parser requires of each instruction's arguments (FROM is read
# with its stage, below). A RUN with none is not refused there, but its step has no command.
_AT_LEAST_ONE = frozenset({"ARG", "ENV", "LABEL", "EXPOSE", "VOLUME", "ONBUILD", "HEALTHCHECK", "SHELL"})
_EXACTLY_ONE = frozenset({"WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"})
_EXAMPLES = {
    "RUN": "RUN make install",
    "COPY": "COPY app.py /app/",
    "ADD": "ADD app.tar.gz /app/",
    "ARG": "ARG VERSION=1.0",
    "ENV": "ENV PATH=/app/bin:$PATH",
    "LABEL": "LABEL org.opencontainers.image.source=…",
    "WORKDIR": "WORKDIR /app",
}


def _missing_arguments(keyword: str, text: str, exec_form: tuple[str, ...] | None) -> str | None:
    """What is wrong with an instruction whose arguments are missing (None when they are there)."""
    head = text.split("\n", 1)[0]  # heredoc bodies follow on the next lines
    words = list(exec_form) if exec_form is not None else _split_words(head)
    if keyword == "RUN" and not text.strip():
        problem = "RUN has no command (a line continuation too many?): `/bin/sh -c` gets no script"
    elif keyword in ("COPY", "ADD") and len(words) < 2:
        count = "1 argument" if len(words) == 1 else f"{len(words)} arguments"
        problem = f"{keyword} has {count}: it needs its sources, then a destination"
    elif keyword in _AT_LEAST_ONE and not words:
        problem = f"{keyword} requires at least one argument"
    elif keyword in _EXACTLY_ONE and not text.strip():
        problem = f"{keyword} requires exactly one argument"
    elif keyword in ("ENV", "LABEL") and "=" not in words[0] and len(words) < 2:
        problem = f"{keyword} {clip(words[0])} has no value"
    else:
        return None
    example = _EXAMPLES.get(keyword)
    return f"{problem}, e.g. `{example}`" if example else problem


def _healthcheck_problem(text: str) -> str | None:
    """HEALTHCHECK takes NONE alone, or CMD and a command (BuildKit's parser refuses the rest)."""
    words = text.split()
    kind = words[0].upper() if words else ""
    if kind == "NONE" and len(words) > 1:
        return "HEALTHCHECK NONE takes no arguments"
    if kind == "CMD" and len(words) == 1:
        return "HEALTHCHECK CMD has no command, e.g. `HEALTHCHECK CMD wget -qO- http://localhost/ || exit 1`"
    if kind not in ("", "NONE", "CMD"):
        return f"HEALTHCHECK takes NONE or CMD, not {clip(words[0])}"
    return None


def _exec_form(keyword: str, text: str) -> tuple[str, ...] | None:
    if keyword not in _JSON_FORMS or not text.lstrip().startswith("[") or _NESTED.match(text):
        return None  # an array of arrays is never a list of strings: no need to parse it (or recurse)
    try:
        value = json.loads(text.strip())
    except (ValueError, RecursionError):
        return None  # BuildKit falls back to the shell form
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


def _split_stages(
    instructions: list[Instruction], problems: list[tuple[int, str]]
) -> tuple[list[Instruction], list[Stage]]:
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    current: dict | None = None
    body: list[Instruction] = []

    def close() -> None:
        if current is not None:
            stages.append(Stage(**current, instructions=tuple(body)))

    values: dict[str, str] | None = None  # the global ARG defaults, computed at the first FROM
    names: dict[str, int] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            close()
            body = []
            if values is None:
                values = _global_values(global_args)
            current = _stage_head(ins, len(stages), names, values, problems)
            if current["name"]:
                names.setdefault(current["name"], current["index"])
        elif current is None:
            if ins.keyword == "ARG":
                global_args.append(ins)
            elif ins.keyword in INSTRUCTIONS:
                problems.append((ins.line, f"{ins.keyword} before the first FROM"))
        else:
            body.append(ins)
    close()
    if not stages:
        problems.append((instructions[-1].line if instructions else 1, "no FROM instruction"))
    return global_args, stages


def _global_values(global_args: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for arg in global_args:
        for arg_name, default in arg_declarations(arg.text):
            if default is not None:
                values[arg_name] = substitute(default, values)
    return values


def _stage_head(
    ins: Instruction,
    index: int,
    names: dict[str, int],
    values: dict[str, str],
    problems: list[tuple[int, str]],
) -> dict:
    words = ins.text.split()
    if not words:
        problems.append((ins.line, "FROM needs an image"))
        words = ["scratch"]
    name = None
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
    elif len(words) > 1:
        problems.append((ins.line, f"FROM expects `image [AS name]`, not {len(words)} words"))
    base = words[0]
    parent = names.get(base.lower())
    return {
        "index": index,
        "name": name,
        "base": base,
        "image": substitute(base, values),
        "platform": ins.flag("platform"),
        "line": ins.line,
        "parent": parent,
    }


def clip(text: str, limit: int = 40) -> str:
    """A word from the Dockerfile, for a message: quoted, at most `limit` characters (never the
    whole line: lint does not echo a file's content)."""
    return "`" + (text if len(text) <= limit else text[:limit] + "…") + "`"


def arg_declarations(text: str) -> list[tuple[str, str | None]]:
    """`ARG A B=1` → [("A", None), ("B", "1")]."""
    result: list[tuple[str, str | None]] = []
    for word in _split_words(text):
        name, eq, default = word.partition("=")
        if name:
            result.append((name, _unquote(default) if eq else None))
    return result


def env_declarations(text: str) -> list[tuple[str, str]]:
    """`ENV A=1 B="x y"` or the old `ENV A value` → [(name, value), ...]."""
    words = _split_words(text)
    if words and "=" not in words[0]:
        return [(words[0], text.strip()[len(words[0]) :].strip())]
    return [(w.partition("=")[0], _unquote(w.partition("=")[2])) for w in words if "=" in w]


def _split_words(text: str) -> list[str]:
    # Whitespace-separated words; quotes keep spaces inside a word.
    return _WORDS.findall(text)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def substitute(value: str, variables: Mapping[str, str]) -> str:
    """Replace `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}` with known values.

    Unknown variables stay as written, so callers can tell a value they could not resolve.
    """

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(4)
        operator, word = match.group(2), match.group(3) or ""
        known = name in variables
        current = variables.get(name, "")
        if operator in (":-", "-"):
            unset = not known or (operator == ":-" and not current)
            return substitute(word, variables) if unset else current
        if operator in (":+", "+"):
            is_set = known and (operator == "+" or bool(current))
            return substitute(word, variables) if is_set else ""
        return current if known else match.group(0)

    return _VARIABLE.sub(replace, value)
