"""What names say about platforms: `--platform` values, file names (`Dockerfile.linux-arm64`)
and image references (`arm64v8/alpine`, `base:linux-amd64`), in lint's terms.

The words come from the one platform vocabulary, `farmfile.platforms`. Pure.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from buildkit_farm.errors import UsageError
from buildkit_farm.farmfile import platforms

# Words too short or too common to mean an architecture outside a tag or a file name.
_LOOSE_WORDS = frozenset({"arm", "x86", "x64", "386"})
ARCH_WORDS: dict[str, str] = platforms.ARCH_WORDS  # word -> canonical arch ("arm/v7")


def _words_regex(words: Iterable[str]) -> re.Pattern:
    # As a trie (`a(?:md64|arch64|rm…)`): one alternative tried per character, not fifty.
    trie: dict = {}
    for word in {w.lower() for w in words}:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return re.compile(rf"(?<![A-Za-z0-9])({_trie_pattern(trie)})(?![A-Za-z0-9])", re.IGNORECASE)


def _trie_pattern(node: dict) -> str:
    ends = "" in node
    branches = [re.escape(char) + _trie_pattern(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if ends else body


ANY_ARCH = _words_regex(ARCH_WORDS)
STRICT_ARCH = _words_regex(w for w in ARCH_WORDS if w not in _LOOSE_WORDS)
# The same words for long texts (a 100k-line RUN): case-sensitive on an ASCII-lowered copy and
# without the lookbehind, which let `re` skip ahead; the word boundary is checked afterwards.
_STRICT_FAST = re.compile(STRICT_ARCH.pattern.replace("(?<![A-Za-z0-9])", "", 1))
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


class ArchWord(NamedTuple):
    """An architecture word found in a text: where, and the word as written."""

    begin: int
    finish: int
    word: str

    def start(self) -> int:
        return self.begin

    def group(self, _: int = 0) -> str:
        return self.word


def arch_words(text: str) -> list[ArchWord]:
    """Every architecture word in `text` (as STRICT_ARCH finds them), in time linear in `text`."""
    found: list[ArchWord] = []
    for match in _STRICT_FAST.finditer(text.translate(_ASCII_LOWER)):
        begin, finish = match.span(1)
        if begin and text[begin - 1] in _ALNUM:
            continue
        found.append(ArchWord(begin, finish, text[begin:finish]))
    return found


@dataclass(frozen=True)
class Target:
    """The OS and (when known) architecture a Dockerfile is built for, and why we think so."""

    os: str
    arch: str | None  # canonical: "amd64", "arm/v7"; None when only the OS is known
    source: str  # "farm file", "file name", "--platform"

    @property
    def platform(self) -> str:
        return f"{self.os}/{self.arch}" if self.arch else self.os


@functools.lru_cache(maxsize=512)
def arch_key(arch: str) -> str:
    """The canonical architecture of a word or `arch/variant`, amd64 levels folded: `x86_64/v2` -> amd64."""
    word = platforms.arch_word(arch)
    if word is None:
        try:
            word = platforms.parse(f"linux/{arch}").arch_variant
        except platforms.PlatformError:
            word = arch.lower()
    return word.split("/")[0] if word.startswith("amd64/") else word


def parse_platform(text: str, source: str) -> Target:
    """`linux/arm/v7`, `windows/amd64`, `arm64`, `windows` -> a Target; raises UsageError if unknown."""
    lower = text.strip().lower()
    if lower in platforms.OPERATING_SYSTEMS:
        return Target(lower, None, source)
    try:
        parsed = platforms.parse(text)
    except platforms.PlatformError as err:
        raise UsageError(err.message, hint="use os/arch, e.g. linux/arm64 or windows/amd64") from None
    return Target(parsed.os, arch_key(parsed.arch_variant), source)


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
    match = ANY_ARCH.search(tail)
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


# `windowsservercore` and `windowsnanoserver`: Docker Hub's old names and tags (microsoft/windowsservercore,
# golang:windowsservercore-ltsc2022); .NET Framework images are Windows only.
_WINDOWS_WORDS = re.compile(
    r"(?<![a-z0-9])(windows(?:servercore|nanoserver)?|nanoserver|servercore|winamd64|ltsc20\d\d)(?![a-z0-9])"
    r"|^dotnet/framework/",
    re.I,
)
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
    places = [("namespace", p, STRICT_ARCH) for p in parts[:-1]]
    places += [("name", parts[-1], STRICT_ARCH), ("tag", tag, ANY_ARCH)]
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


def parse_platform_quiet(text: str) -> Target | None:
    try:
        return parse_platform(text, "--platform")
    except UsageError:
        return None


def same_platform(a: Target, b: Target | None) -> bool:
    return b is None or (a.os == b.os and (a.arch is None or b.arch is None or a.arch == b.arch))
