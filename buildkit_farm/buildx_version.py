"""Which buildx farm runs: its version, read once per run, checked against the oldest farm supports.

farm is tested with buildx 0.13.1 and 0.29.1 (the lab has both, docs/lab.md). Below `FLOOR`
every command that runs buildx stops with `BuildxUnsupported` (exit 2) before it changes
anything. What differs between the supported versions is decided here, by version:
- `bake` checks filesystem entitlements from 0.20 (`--allow fs.read=…`, unknown to 0.13).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from buildkit_farm import docker
from buildkit_farm.errors import BuildxUnsupported, CorruptState

FLOOR = (0, 13)  # the oldest buildx farm is tested with (0.13.1)
TESTED = ("0.13.1", "0.29.1")
BAKE_ENTITLEMENTS = (0, 20)  # bake wants --allow for files outside its working folder

_NUMBER = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class BuildxVersion:
    """buildx's version as it says it (`0.29.1+ds1`, `v0.29.1-desktop.1`) and as numbers."""

    text: str
    number: tuple[int, int, int] | None  # None: not a release number (a source build says v0.0.0+unknown)

    def at_least(self, wanted: tuple[int, int]) -> bool:
        # An unreadable version is taken as new: refusing a build we cannot date would be worse.
        return self.number is None or self.number[:2] >= wanted

    @property
    def bake_needs_allow(self) -> bool:
        return self.at_least(BAKE_ENTITLEMENTS)


def parse(text: str) -> BuildxVersion | None:
    """`github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4` → 0.29.1+ds1; None when it is not buildx's answer."""
    fields = text.split()
    if len(fields) < 2 or not fields[0].endswith("buildx"):
        return None
    word = fields[1]
    match = _NUMBER.match(word)
    number = tuple(int(g or 0) for g in match.groups()) if match else None
    if number == (0, 0, 0):
        number = None
    return BuildxVersion(word.removeprefix("v"), number)  # type: ignore[arg-type]


def needed() -> str:
    return f"{FLOOR[0]}.{FLOOR[1]} or newer"


def check(version: BuildxVersion | None, *, detail: str = "") -> BuildxVersion:
    """`version` when farm supports it; else BuildxUnsupported naming what was found and what is needed."""
    tested = " and ".join(TESTED)
    if version is None:
        raise BuildxUnsupported(found=None, needed=needed(), tested=tested, detail=detail)
    if not version.at_least(FLOOR):
        raise BuildxUnsupported(found=version.text, needed=needed(), tested=tested)
    return version


_seen: dict[Path, BuildxVersion] = {}
_started: dict[Path, Callable[[], docker.DockerRead]] = {}  # the answer, once buildx gives it


def start(docker_config: str | Path | None = None) -> None:
    """Ask buildx its version in the background; `require` collects the answer (read-only
    commands overlap it with their own reads)."""
    paths = docker.DockerPaths.resolve(docker_config)
    if paths.docker_config not in _seen and paths.docker_config not in _started:
        pending = docker.start_read(paths, None, ["buildx", "version"])
        _started[paths.docker_config] = pending.finish


def require(docker_config: str | Path | None = None) -> BuildxVersion:
    """The buildx this Docker config runs, checked (one `docker buildx version` per config and run)."""
    paths = docker.DockerPaths.resolve(docker_config)
    if paths.docker_config not in _seen:
        answer = _started.pop(paths.docker_config, None)
        got = answer() if answer else docker.read(paths, None, ["buildx", "version"])
        version = parse(got.stdout) if got.returncode == 0 else None
        _seen[paths.docker_config] = check(version, detail=got.message if got.returncode else got.stdout.strip())
    return _seen[paths.docker_config]


@contextmanager
def checked(docker_config: str | Path | None = None) -> Iterator[None]:
    """Ask buildx in the background while the block reads the farm, then require it.

    An unsupported buildx is the error to show even when reading the farm failed, except for
    a corrupt local state file: that is named first, as it is read before anything is asked.
    """
    start(docker_config)
    try:
        yield
    except CorruptState:
        raise
    except BaseException:
        require(docker_config)
        raise
    require(docker_config)
