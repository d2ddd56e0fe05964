"""The starter farm file `farm init` writes: one node, the local engine, its native platform."""

from __future__ import annotations

import os
import platform as host
from dataclasses import dataclass
from pathlib import Path

from buildkit_farm.errors import FarmError, UsageError
from buildkit_farm.farmfile import platforms

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class LocalEngine:
    """What `farm init` knows about the local engine."""

    endpoint: str
    platform: str
    source: str  # "engine" when the engine answered, "machine" when read from this host, "guess"
    note: str = ""  # what was guessed and how to change it, when the machine was not recognised


def local_engine(reported: tuple[str, str] | None) -> LocalEngine:
    """The local engine from what it `reported` (architecture, OS type), asked by the caller
    through the process door; None (no engine answering) is fine: this machine's own says as much."""
    endpoint = os.environ.get("DOCKER_HOST") or DEFAULT_ENDPOINT
    if reported is None:
        return engine_for(endpoint, host.machine(), "linux", "machine")
    machine, os_name = reported
    return engine_for(endpoint, machine, os_name or "linux", "engine")


def engine_for(endpoint: str, machine: str, os_name: str, source: str) -> LocalEngine:
    """The engine's platform from what it (or `uname -m`) reports; an unknown machine is guessed, and said so."""
    try:
        return LocalEngine(endpoint, platforms.native_platform(machine, os_name), source)
    except platforms.PlatformError:
        guess = "linux/amd64"  # the commonest build machine; nodes build Linux images only
        note = (
            f'the {"engine" if source == "engine" else "machine"} reports architecture "{machine}" '
            f"(uname -m), which farm does not know: guessed {guess}; if that is wrong, change the node's "
            f"`platforms` (known: {', '.join(platforms.KNOWN_PLATFORMS)})"
        )
        return LocalEngine(endpoint, guess, "guess", note)


def starter_text(engine: LocalEngine, *, with_target: bool) -> str:
    """The TOML of a first farm file (valid as written; comments show what to add next)."""
    target = (
        f"""
[[target]]
name = "app"
context = "."                        # the folder holding the Dockerfile, relative to this file
platforms = ["{engine.platform}"]
tags = ["registry.example.com/team/app:{{version}}"]   # farm build --var version=1.0
"""
        if with_target
        else f"""
# [[target]]
# name = "app"
# context = "."                      # the folder holding the Dockerfile, relative to this file
# platforms = ["{engine.platform}"]
# tags = ["registry.example.com/team/app:{{version}}"]
"""
    )
    note = "; a GUESS: check it" if engine.note else ""
    return f"""# A buildkit-farm file: `farm validate` checks it, `farm up` makes the builder, `farm build` builds.
# Reference: docs/farm-file.md; JSON Schema for editors: `farm schema`.

[builder]
name = "farm"                        # the buildx builder; not "default", not a node's name
driver = "docker-container"
# To push to a registry on this machine (localhost:5000), BuildKit needs the host's network:
# driver_opts = {{ network = "host" }}

[[node]]
name = "local"                       # also the name of the Docker context farm creates
endpoint = "{engine.endpoint}"
platforms = ["{engine.platform}"]          # the native platform ({engine.source}){note}

# Add a machine per CPU family, e.g. an Arm box reached over ssh:
# [[node]]
# name = "arm"
# endpoint = "ssh://user@arm-host"
# platforms = ["linux/arm64", "linux/arm/v7"]
{target}"""


def check_writable(file: Path, *, force: bool = False) -> None:
    """Refuse to write the starter at `file`: a folder, a file there (unless `force`), no folder for it."""
    if file.is_dir():
        raise UsageError(f"{file} is a folder", hint="name the file to write, e.g. -f ./multiarch.toml")
    if file.exists() and not force:
        raise UsageError(f"{file} already exists", hint="check it with `farm validate`, or overwrite it with --force")
    if not file.parent.is_dir():
        raise UsageError(
            f"folder {file.parent} does not exist", hint="create it first, or write the file elsewhere with -f"
        )


def write_starter(file: Path, engine: LocalEngine) -> None:
    """Write the starter farm file for `engine` at `file` (checked first with `check_writable`)."""
    text = starter_text(engine, with_target=(file.parent / "Dockerfile").is_file())
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as err:
        raise FarmError(f"cannot write {file}: {err.strerror or err}", hint="check the folder's permissions") from None
