"""Platform names: the canonical `os/arch[/variant]` form buildx uses, and their aliases.

The aliases are those of the book's table 16.1 (x86_64, aarch64, armv8, arm32v7, armv7,
armhf) plus the common others (i386, arm, armv6, ...). `linux/` is the default OS.
"""

from __future__ import annotations

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

# Architecture (optionally with its variant) -> canonical `arch[/variant]`.
ARCH_ALIASES: dict[str, str] = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "x64": "amd64",
    "amd64/v1": "amd64",
    "aarch64": "arm64",
    "armv8": "arm64",
    "arm64v8": "arm64",
    "arm64/v8": "arm64",
    "arm": "arm/v7",
    "armhf": "arm/v7",
    "armv7": "arm/v7",
    "armv7l": "arm/v7",
    "arm32v7": "arm/v7",
    "armv6": "arm/v6",
    "armv6l": "arm/v6",
    "armel": "arm/v6",
    "arm32v6": "arm/v6",
    "armv5": "arm/v5",
    "arm32v5": "arm/v5",
    "i386": "386",
    "i686": "386",
    "x86": "386",
}


class PlatformError(ValueError):
    """A platform name that is not known; `hint` lists the known ones."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message} ({hint})")
        self.message = message
        self.hint = hint


def normalise(name: str) -> str:
    """Return the canonical form of a platform name: `aarch64` -> `linux/arm64`.

    Raises `PlatformError` (a ValueError) naming the known platforms.
    """
    if not isinstance(name, str):
        raise PlatformError(f"a platform must be a string, not {type(name).__name__}", _known_hint())
    text = name.strip().lower()
    parts = text.split("/")
    if parts[0] in OPERATING_SYSTEMS:
        os_name, arch = parts[0], "/".join(parts[1:])
    else:
        os_name, arch = "linux", text
    arch = ARCH_ALIASES.get(arch, arch)
    canonical = f"{os_name}/{arch}"
    if canonical not in KNOWN_PLATFORMS:
        raise PlatformError(f'unknown platform "{name}"', _known_hint())
    return canonical


def is_windows(platform: str) -> bool:
    """True for a canonical `windows/*` platform."""
    return platform.startswith("windows/")


def native_platform(machine: str, os_name: str = "linux") -> str:
    """The platform of an engine that reports `os_name`/`machine` (as `uname -m` does)."""
    return normalise(f"{os_name.lower()}/{machine.lower()}")


def _known_hint() -> str:
    aliases = ", ".join(
        f"{alias}={ARCH_ALIASES[alias]}"
        for alias in ("x86_64", "aarch64", "armv8", "armhf", "armv7", "arm32v7", "arm", "i386")
    )
    return f"known: {', '.join(KNOWN_PLATFORMS)}; aliases: {aliases}"
