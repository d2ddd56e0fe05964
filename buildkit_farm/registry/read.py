"""Reading images from their registries: `farm inspect`, the build's checks, lint's FROM checks.

A list that the registry serves anonymously is read over its HTTP API in this process
(`registry.distribution`); everything else goes through `docker buildx imagetools`, which
talks to the registry only: nothing is pulled into an engine, like `docker manifest
inspect`. The answer is copied out into plain frozen data (`registry.index`) before anything
else looks at it.

Why not python-on-whales' `imagetools.inspect`: it runs `--raw` and parses into a model that
drops `os.version`, the descriptors' annotations (which mark attestation manifests) and the
digest of the index itself. `--format '{{json .}}'` carries all three; that one command
runs through the process door (`buildkit_farm.docker`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from buildkit_farm.docker import DockerFailed
from buildkit_farm.errors import ImageNotFound, RegistryError
from buildkit_farm.registry import distribution
from buildkit_farm.registry.access import Reach, session
from buildkit_farm.registry.index import (
    ImageIndex,
    ListPlan,
    check_plan,
    check_ref,
    classify_failure,
    parse_inspect,
    plan_list,
)


def inspect_image(
    ref: str,
    *,
    ca: str | Path | None = None,
    docker_config: str | Path | None = None,
    builder: str | None = None,
) -> ImageIndex:
    """The variants of `ref` as its registry holds them, read without pulling anything.

    `ca`: a CA file or directory to trust (default `$FARM_REGISTRY_CA`); `docker_config`:
    the Docker config dir (auth, builders); `builder`: the builder whose buildkitd config
    carries the registry settings (http/https). Raises ImageNotFound, RegistryError, or
    UsageError for a malformed reference.
    """
    check_ref(ref)
    direct = distribution.get(ref, ca=ca, docker_config=docker_config)  # read anonymously: no process
    index = direct.index() if direct is not None else None
    if index is not None:
        return index
    with session([ref], ca=ca, docker_config=docker_config, builder=builder) as where:
        return inspect_ref(where, ref)


def check_sources(
    sources: Sequence[str],
    *,
    building: Sequence[str] = (),
    ca: str | Path | None = None,
    docker_config: str | Path | None = None,
    builder: str | None = None,
) -> ListPlan:
    """Read every source from its registry before anything is built or pushed.

    Raises ImageNotFound naming all missing sources at once, and PlatformConflict when two
    sources, or a source and a platform in `building`, carry the same platform. Returns the
    plan (the sources' images, after the `building` platforms).
    """
    for source in sources:
        check_ref(source, what="source")
    with session(list(sources), ca=ca, docker_config=docker_config, builder=builder) as where:
        plan = plan_list(inspect_sources(where, sources), building=building)
    check_plan(plan)
    return plan


def inspect_sources(where: Reach, sources: Sequence[str]) -> list[ImageIndex]:
    indexes, missing = [], []
    for source in dict.fromkeys(sources):
        try:
            indexes.append(inspect_ref(where, source))
        except ImageNotFound:
            missing.append(source)
    if missing:
        raise ImageNotFound(
            "source image(s) not found: " + ", ".join(f'"{m}"' for m in missing),
            hint="push each variant first: the images must be in the registry before the list is made",
        )
    return indexes


def inspect_ref(where: Reach, ref: str) -> ImageIndex:
    try:
        out = where.inspect(ref)
    except DockerFailed as err:
        raise classify_failure(ref, err.stderr) from None
    try:
        return parse_inspect(ref, json.loads(out))
    except (ValueError, TypeError, AttributeError) as err:
        raise RegistryError(f"could not read the imagetools answer for {ref}: {err}") from None
