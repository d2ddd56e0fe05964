"""Architecture switches in RUN steps: a `case` over the architecture whose `*)` branch only
fails, or that has none, supports just the arches it lists (rules unsupported-platform and
arch-case-no-default). Pure.
"""

from __future__ import annotations

import re

from buildkit_farm.lint.arch import ARCH_KEYS, WORD_CHARS, platform_aware, platform_of
from buildkit_farm.lint.findings import Check
from buildkit_farm.lint.names import arch_key

_CASE_WORDS = re.compile(r"(case|esac)(?![\w-])")
_CASE_HEAD = re.compile(r"case\s+\S[^\n]{0,200}?\s+in(?![\w-])")
_CASE_LIMIT = 20_000  # characters: a longer `case` is not an arch switch worth reading


def _cases(text: str) -> list[tuple[int, str]]:
    """(offset, body after `in`) of each `case … in … esac` in a shell script, in one pass."""
    found: list[tuple[int, str]] = []
    opened: list[int] = []
    for match in _CASE_WORDS.finditer(text):
        if match.start() and text[match.start() - 1] in WORD_CHARS:
            continue  # `lowercase`, `showcase`
        if match.group(1) == "case":
            opened.append(match.start())
        elif opened:
            start = opened.pop()
            if match.start() - start <= _CASE_LIMIT:
                head = _CASE_HEAD.match(text, start, match.start())
                if head:
                    found.append((start, text[head.end() : match.start()]))
    return found


_BRANCH = re.compile(r"^\s*\(?\s*([^()]+?)\s*\)(.*)$", re.S)
_FAILS = re.compile(r"^(?:exit\s+(?:[1-9]\d*|\S*\$\S*)|false|return\s+[1-9]\d*)$")
_SAYS = re.compile(r"^(?:echo|printf|>&2|1>&2)(?:\s|$)")


def _only_fails(body: str) -> bool:
    """A `*)` branch that only reports and fails (`echo >&2 "unsupported"; exit 1`), not a fallback
    that builds from source."""
    commands = [c.strip() for c in re.split(r";|&&|\|\||\n", body) if c.strip()]
    fails = [c for c in commands if _FAILS.match(c)]
    return bool(fails) and all(_FAILS.match(c) or _SAYS.match(c) for c in commands)


_APK = re.compile(r"apk\s+--print-arch|/etc/apk/arch")
# Names used by package managers (dpkg, apk) that no platform vocabulary spells the same way.
_DISTRO_ARCHES = {"ppc64el": "ppc64le", "armel": "arm/v6", "x86": "386", "mips64el": "mips64le"}


def check_supported_arches(check: Check) -> None:
    """A `case` over the architecture supports only the arches it lists when its `*)` branch
    fails, or when it has none (an unlisted platform matches no branch and builds on with
    nothing set): a platform being built that is not listed is unsupported-platform; a `case`
    with no `*)` at all is arch-case-no-default even when every platform built is listed."""
    targets = [check.bound] if check.bound else list(check.platforms)
    wanted = [t for t in targets if t and t.arch]
    for stage in check.df.stages:
        on_builder = "BUILDPLATFORM" in platform_of(check.df, stage)
        for ins in stage.instructions:
            if ins.keyword != "RUN" or "case" not in ins.text or not platform_aware(ins.text):
                continue
            if on_builder and not re.search(r"TARGET(?:ARCH|PLATFORM)", ins.text):
                continue  # a case over the build machine's arch, not the target's
            for start, body in _cases(ins.text):
                supported, default = _case_arches(body, apk=bool(_APK.search(ins.text)))
                if supported and default != "fallback":
                    _check_case(check, ins.line_at(start), supported, default, wanted)


_NO_DEFAULT_FIX = 'end the `case` with `*) echo "unsupported architecture" >&2; exit 1 ;;` so that it fails loudly'


def _check_case(check: Check, line: int, supported: set[str], default: str, wanted: list) -> None:
    names = ", ".join(sorted(supported))
    missing = [t.platform for t in wanted if not _covers(supported, t.arch or "")]
    if missing and default == "fails":
        check.add(
            "unsupported-platform",
            line,
            f"the `case` over the architecture supports only {names} (its `*)` branch fails): "
            f"the {', '.join(missing)} build fails here",
            "add a branch for it, or drop the platform from the target",
        )
    elif missing:
        check.add(
            "unsupported-platform",
            line,
            f"the `case` over the architecture has branches for {names} only, and no `*)` branch: "
            f"the {', '.join(missing)} build matches none and goes on with nothing set, silently",
            f"add a branch for it; and {_NO_DEFAULT_FIX}",
        )
    elif default == "none":
        check.add(
            "arch-case-no-default",
            line,
            f"the `case` over the architecture has branches for {names} only, and no `*)` branch: "
            "a platform added later matches none and builds on with nothing set, silently",
            _NO_DEFAULT_FIX,
        )


def _case_arches(body: str, *, apk: bool) -> tuple[set[str], str]:
    """The arches a `case` lists, and its `*)` branch: "fails" (only reports and fails),
    "fallback" (does something else, e.g. builds from source) or "none"."""
    arches: set[str] = set()
    default = "none"
    for branch in body.split(";;"):
        match = _BRANCH.match(branch)
        if not match:
            continue
        labels = [w.strip().strip("\"'") for w in match.group(1).split("|")]
        if "*" in labels:
            default = "fails" if _only_fails(match.group(2)) else "fallback"
            continue
        arches.update(a for a in (_label_arch(label, apk=apk) for label in labels) if a)
    return arches, default


def _label_arch(label: str, *, apk: bool) -> str | None:
    """The arch a `case` label names: `x86_64`, `armhf`, `linux/arm/v7`, `*/arm64`, `arm*` (any 32-bit ARM)."""
    word = label.lower().strip("*")
    if "/" in word:
        word = "/".join(part for part in word.split("/") if part and part != "linux")
    if apk and word == "armhf":
        return "arm/v6"  # Alpine's armhf is ARMv6 (Debian's is ARMv7)
    if word in _DISTRO_ARCHES:
        return _DISTRO_ARCHES[word]
    if word in ("arm", "armv"):
        return "arm"  # every 32-bit ARM
    key = arch_key(word)
    return key if key in ARCH_KEYS else None


def _covers(supported: set[str], arch: str) -> bool:
    return arch in supported or (arch.startswith("arm/") and "arm" in supported)
