"""The build's registry checks (read only): before building, every registry answers and every
source exists without clashing; after the push, every platform is in what was pushed."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from buildkit_farm.builds.resolve import ResolvedTarget
from buildkit_farm.errors import BuildError
from buildkit_farm.farmfile import reference
from buildkit_farm.registry.index import ImageIndex


def check_registries(tags: Sequence[str], *, timeout: float = 3.0) -> None:
    """Fail before building when a tag's registry does not even accept a connection."""
    seen = set()
    for tag in tags:
        host = reference.registry_host(tag)
        if host == "docker.io" or host in seen:
            continue  # Docker Hub: not ours to probe
        seen.add(host)
        name, port = reference.split_host(host)
        try:
            with socket.create_connection((name, port or 443), timeout=timeout):
                pass
        except OSError as err:
            raise BuildError(
                f'registry {host} (for tag "{tag}") does not answer: {err.strerror or err}',
                hint="start the registry or fix the tag's host:port; nothing was built or pushed",
            ) from None


def check_sources(target: ResolvedTarget, *, docker_config: str | None, builder: str) -> None:
    """Before building: every source exists, and no two images (built or stitched) share
    a platform. Reads the registry only."""
    if target.sources:
        from buildkit_farm.registry import read  # on first use: an early build starts without it

        read.check_sources(target.sources, building=target.platforms, docker_config=docker_config, builder=builder)


def check_pushed(
    ref: str, requested: Sequence[str], *, target: str, docker_config: str | None = None, builder: str | None = None
) -> ImageIndex:
    """Inspect the pushed list by reference; every requested platform must be there."""
    from buildkit_farm.registry import read

    index = read.inspect_image(ref, docker_config=docker_config, builder=builder)
    present = [v.platform for v in index.variants if not v.is_attestation]
    missing = missing_platforms(requested, present)
    if missing:
        raise BuildError(
            f'target "{target}": the pushed list {ref} lacks {", ".join(missing)} '
            f"(it has {', '.join(present) or 'nothing'})",
            hint="the tags were not moved; check the build log for the missing platform",
        )
    return index


def missing_platforms(requested: Sequence[str], present: Sequence[str]) -> list[str]:
    """Requested platforms absent from a pushed list (pure)."""
    have = set(present)
    return [p for p in requested if p not in have]
