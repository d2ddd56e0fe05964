"""How a RUN step picks by the architecture, so that the words in it are not hard-coded ones:
the spellings that map it (TARGETARCH, `uname -m`, `dpkg --print-architecture`, tonistiigi/xx),
and a `case` or a test over any variable that holds it. Pure.
"""

from __future__ import annotations

import functools
import re

from buildkit_farm.lint.names import arch_words

PLATFORM_AWARE = re.compile(
    r"TARGET(?:ARCH|PLATFORM|OS|VARIANT)|BUILD(?:ARCH|PLATFORM|OS|VARIANT)|uname\s+-\w*m"
    r"|dpkg\s+--print-architecture|dpkg-architecture|apk\s+--print-arch|/etc/apk/arch|\$\(\s*arch\s*\)|`arch`"
    r"|xx-(?:info|go|apk|apt|cargo|clang|verify)"
)


@functools.lru_cache(maxsize=64)  # each instruction is asked by several rules
def platform_aware(text: str) -> bool:
    """True when the text maps the architecture itself: TARGETARCH, `uname -m`, `dpkg --print-architecture`…,
    or picks by it whatever variable holds it (a `case` with arch branches, `[ "$ARCH" = arm64 ]`)."""
    return PLATFORM_AWARE.search(text) is not None or _switches_on_arch(text)


# Before an architecture word, a test's comparison: `[ "$A" = arm64 ]`, `[[ $a == x86_64 ]]`,
# PowerShell's `-eq 'AMD64'`; not an assignment (`ARCH=amd64` hard-codes it).
_COMPARED = re.compile(r"(?:\s=|==|!=|-eq|-ne|-like)\s*[\"']?[\w*/]*$", re.I)


def _switches_on_arch(text: str) -> bool:
    """A `case` whose branch label is an architecture, or a test against one: the text picks its
    files by the architecture, so an arch word in a branch is that branch's own."""
    has_case = "esac" in text
    has_test = any(op in text for op in (" =", "==", "!=", "-eq", "-ne", "-like"))
    if not (has_case or has_test):
        return False  # the usual RUN: no word to look around (a 100k-line one stays linear)
    for word in arch_words(text):
        after = text[word.finish : word.finish + 4].lstrip("*\"' ")
        if has_case and after[:1] in (")", "|"):
            return True
        before = text[max(0, word.begin - 24) : word.begin]
        if has_test and ("=" in before or "-" in before) and _COMPARED.search(before):
            return True
    return False
