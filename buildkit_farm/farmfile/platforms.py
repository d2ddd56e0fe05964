"""Platform names: the canonical `os/arch[/variant]` form buildx uses, and every other spelling of it.

One vocabulary for the whole tool (the farm file, `farm init`, `farm lint`, registry reads):
- `parse`/`normalise` read a platform as containerd does (`containerd/platforms`: `Parse`, then
  `Normalize`): 1 to 3 `/`-separated components, the architecture and the variant normalised
  separately (`linux/aarch64/v8`, `linux/arm/7`, `linux/x86_64/v2`), `linux/` the default OS.
  On top of containerd's spellings, the book's table 16.1 aliases (armv8, arm32v7, armv7...).
  Only the platforms in `KNOWN_PLATFORMS` are accepted.
- `native_platform` reads what `uname -m` (or `docker info`) says a machine is.
- `ARCH_WORDS` are the words that name an architecture in free text (image tags, file names).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from buildkit_farm.farmfile.words import quote

KNOWN_PLATFORMS: tuple[str, ...] = (
    "linux/amd64",
    "linux/amd64/v2",
    "linux/amd64/v3",
    "linux/amd64/v4",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/arm/v5",
    "linux/386",
    "linux/s390x",
    "linux/ppc64le",
    "linux/riscv64",
    "linux/mips64le",
    "linux/mips64",
    "linux/loong64",
    "windows/amd64",
    "windows/arm64",
)

OPERATING_SYSTEMS = ("linux", "windows")

# The book's aliases (and other common ones) that containerd does not read, as (arch, variant).
# Only taken without a variant of their own: `linux/armv7` yes, `linux/armv7/v6` no.
BOOK_ALIASES: dict[str, tuple[str, str]] = {
    "x64": ("amd64", ""),
    "armv8": ("arm64", ""),
    "arm64v8": ("arm64", ""),
    "armv7": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "arm32v7": ("arm", "v7"),
    "armv6": ("arm", "v6"),
    "armv6l": ("arm", "v6"),
    "arm32v6": ("arm", "v6"),
    "armv5": ("arm", "v5"),
    "arm32v5": ("arm", "v5"),
    "i686": ("386", ""),
    "x86": ("386", ""),
}
# Kept for callers that map a bare alias to `arch[/variant]`.
ARCH_ALIASES: dict[str, str] = {
    alias: f"{arch}/{variant}" if variant else arch
    for alias, (arch, variant) in {
        **BOOK_ALIASES,
        "x86_64": ("amd64", ""),
        "x86-64": ("amd64", ""),
        "aarch64": ("arm64", ""),
        "arm": ("arm", "v7"),
        "armhf": ("arm", "v7"),
        "armel": ("arm", "v6"),
        "i386": ("386", ""),
    }.items()
}

# What `uname -m` prints -> canonical `arch[/variant]` (Linux). `armv8l` is a 32-bit userland on a
# 64-bit ARM kernel: it runs arm/v7 images, not arm64 ones.
UNAME_MACHINES: dict[str, str] = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv8l": "arm/v7",
    "armv7l": "arm/v7",
    "armv7": "arm/v7",
    "armv6l": "arm/v6",
    "armv5tel": "arm/v5",
    "armv5tejl": "arm/v5",
    "i386": "386",
    "i486": "386",
    "i586": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loong64",
    "mips64": "mips64",
    "mips64el": "mips64le",
}

# containerd's component syntax; farm reads no OS version or features (`windows(10.0.17763)`).
_COMPONENT = re.compile(r"^[A-Za-z0-9_.-]+$")
_OS_COMPONENT = re.compile(r"^[A-Za-z0-9_-]+$")


class PlatformError(ValueError):
    """A platform name that is not known; `hint` lists the known ones."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message} ({hint})")
        self.message = message
        self.hint = hint


class Platform(NamedTuple):
    """A canonical platform: `linux/arm/v7` is ("linux", "arm", "v7")."""

    os: str
    arch: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in self if part)

    @property
    def arch_variant(self) -> str:
        """`arm/v7`, `amd64`: the architecture with its variant."""
        return f"{self.arch}/{self.variant}" if self.variant else self.arch


def normalise_arch(arch: str, variant: str = "") -> tuple[str, str]:
    """containerd's `normalizeArch`, branch by branch: `("aarch64", "8")` -> `("arm64", "")`."""
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        return "arm64", {"8": "", "v8": "", "v8.0": "", "9": "v9", "9.0": "v9", "v9.0": "v9"}.get(variant, variant)
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        return "arm", {"": "v7", "7": "v7", "5": "v5", "6": "v6", "8": "v8"}.get(variant, variant)
    return arch, variant


def parse(name: str) -> Platform:
    """Read a platform name the way containerd does; raise `PlatformError` unless farm knows it."""
    if not isinstance(name, str):
        raise PlatformError(f"a platform must be a string, not {type(name).__name__}", _known_hint())
    unknown = f"unknown platform {quote(name)}"  # escaped: it may come from any file
    parts = name.strip().split("/")
    syntax = _syntax_problem(name.strip(), parts)
    if syntax:
        raise PlatformError(unknown, f"{syntax}; {_known_hint()}")
    os_name = parts[0].lower()
    if len(parts) == 1 and os_name in OPERATING_SYSTEMS:
        raise PlatformError(unknown, f"name the architecture too, e.g. {os_name}/amd64; {_known_hint()}")
    named_os = len(parts) > 1 and os_name not in OPERATING_SYSTEMS and os_name not in ARCH_WORDS
    if os_name not in OPERATING_SYSTEMS and len(parts) < 3:  # `aarch64`, `arm/v6`: linux is the default OS
        os_name, parts = "linux", ["linux", *parts]
    arch, variant = parts[1].lower(), (parts[2].lower() if len(parts) == 3 else "")
    if arch in BOOK_ALIASES and not variant:
        arch, variant = BOOK_ALIASES[arch]
    arch, variant = normalise_arch(arch, variant)
    platform = Platform(os_name, arch, variant)
    if str(platform) not in KNOWN_PLATFORMS:
        other_os = "farm builds linux images (and stitches windows ones); " if named_os else ""
        raise PlatformError(unknown, other_os + _known_hint())
    return platform


def _syntax_problem(name: str, parts: list[str]) -> str:
    words = name.split()
    if "," in name or (len(words) > 1 and all("/" in word for word in words)):
        return 'one platform per item, e.g. platforms = ["linux/amd64", "linux/arm64"]'
    if len(parts) > 3:
        return "at most os/arch/variant"
    if any(not part for part in parts):
        return "an empty part (a leading, trailing or double /)"
    if not _OS_COMPONENT.match(parts[0]) or not all(_COMPONENT.match(part) for part in parts[1:]):
        return "only letters, digits, _ . - between the /"
    return ""


def normalise(name: str) -> str:
    """Return the canonical form of a platform name: `aarch64` -> `linux/arm64`.

    Raises `PlatformError` (a ValueError) naming the known platforms.
    """
    return str(parse(name))


def is_windows(platform: str) -> bool:
    """True for a canonical `windows/*` platform."""
    return platform.startswith("windows/")


def native_platform(machine: str, os_name: str = "linux") -> str:
    """The platform of an engine that reports `os_name`/`machine` (as `uname -m` does)."""
    arch = UNAME_MACHINES.get(machine.strip().lower())
    if arch is None:
        raise PlatformError(f'unknown machine "{machine}"', f"known: {', '.join(UNAME_MACHINES)}")
    return normalise(f"{os_name.strip().lower()}/{arch}")


def arch_word(word: str) -> str | None:
    """The canonical `arch[/variant]` a word names (`aarch64`, `arm32v7`, `armv8l`), or None."""
    return ARCH_WORDS.get(word.lower())


def _arch_words() -> dict[str, str]:
    words: dict[str, str] = {}
    for platform in KNOWN_PLATFORMS:  # linux/amd64 before amd64/v2, arm/v7 before arm/v6
        arch = platform.split("/", 1)[1]
        words.setdefault(arch.split("/")[0], arch)
    words.update(ARCH_ALIASES)
    words.update(UNAME_MACHINES)
    words["winamd64"] = "amd64"  # the Docker Hub namespace of Windows amd64 images
    return words


ARCH_WORDS: dict[str, str] = _arch_words()


def _known_hint() -> str:
    aliases = ", ".join(
        f"{alias}={ARCH_ALIASES[alias]}"
        for alias in ("x86_64", "aarch64", "armv8", "armhf", "armv7", "arm32v7", "arm", "i386")
    )
    return f"known: {', '.join(KNOWN_PLATFORMS)}; aliases: {aliases}"
