"""Publishing: one manifest list from many images, pushed under the user's tags, then read back.

This is the only registry write besides the build's own push by digest; it is the moment a
user's tag moves (`docker buildx imagetools create`, registry to registry, nothing pulled).
The common case of a build, one list pushed by digest and tags in its own repository, is
done over the registry's HTTP API when it is open to anonymous requests
(`registry.distribution`): the tags get that list's exact bytes, so its digest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from buildkit_farm.causes import transient_push
from buildkit_farm.docker import DockerFailed, last_lines
from buildkit_farm.errors import RegistryError, UsageError
from buildkit_farm.farmfile.reference import repository
from buildkit_farm.registry import distribution
from buildkit_farm.registry.access import Reach, session
from buildkit_farm.registry.index import (
    ImageIndex,
    ListPlan,
    canonical_platform,
    check_plan,
    check_ref,
    classify_failure,
    create_passes,
    plan_list,
)
from buildkit_farm.registry.read import inspect_ref, inspect_sources

# Seconds before making the list again after a push that failed for a passing reason. Seen on
# the lab: buildx 0.29 copies an index and each of its images at once, so one blob is uploaded
# by several requests together; a registry on the filesystem driver rewrites the blob's link in
# the repository for each, and a manifest PUT that reads it in between gets 400 "digest
# invalid / blob unknown". Once the copies are done, the same create succeeds.
CREATE_SETTLE = 2.0


def publish_list(
    tags: Sequence[str],
    sources: Sequence[str],
    *,
    ca: str | Path | None = None,
    docker_config: str | Path | None = None,
    builder: str | None = None,
    known: Sequence[ImageIndex] = (),
    echo: Callable[[str], None] | None = None,
) -> str:
    """Join `sources` into one manifest list pushed under every tag; return its digest.

    `sources` are `repo@sha256:...` digests or `repo:tag` references already in a registry;
    each may itself be a list (its images are all taken). Before anything is pushed, every
    source is read from the registry: missing ones are named together (ImageNotFound) and
    two images of one platform are refused (PlatformConflict). After the push, every tag is
    read back: it must show the same digest and every planned image (digest, platform,
    os.version). `known`: sources already read by digest (immutable), not read again.
    A push that fails for a passing reason (`causes.transient_push`) is made again once, said
    through `echo`.
    """
    if not tags:
        raise UsageError("publishing a list needs at least one tag")
    if not sources:
        raise UsageError("publishing a list needs at least one source image")
    for tag in tags:
        check_ref(tag, what="tag", allow_digest=False)
    for source in sources:
        check_ref(source, what="source")
    direct = _publish_direct(tags, sources, ca=ca, docker_config=docker_config)
    if direct is not None:
        return direct
    with session([*tags, *sources], ca=ca, docker_config=docker_config, builder=builder) as where:
        have = {ix.ref: ix for ix in known if "@" in ix.ref}
        read = iter(inspect_sources(where, [s for s in sources if s not in have]))
        indexes = [have[s] if s in have else next(read) for s in dict.fromkeys(sources)]
        plan = plan_list(indexes)
        check_plan(plan)
        first, fixups = create_passes(tags, indexes)
        _create(where, tags, first, fixups, echo or (lambda _: None))
        return _verify_published(where, tags, plan)


def _create(
    where: Reach,
    tags: Sequence[str],
    first: Sequence[str],
    fixups: Sequence[tuple[str, Sequence[str]]],
    echo: Callable[[str], None],
) -> None:
    """Run the create passes; once more, whole, after a push that failed for a passing reason
    (creating a list from the same sources is idempotent)."""
    for again in (False, True):
        try:
            where.create(first, tags)
            for tag, extra in fixups:
                where.create([tag, *extra], [tag])
            return
        except DockerFailed as err:
            if again or not transient_push(err.stderr):
                raise classify_failure(tags[0], err.stderr, action="push the list to") from None
            echo(
                f"farm: pushing the list of {', '.join(tags)} failed for a reason that passes "
                f"({last_lines(err.stderr)}); pushing it again once"
            )
            time.sleep(CREATE_SETTLE)


def _publish_direct(
    tags: Sequence[str], sources: Sequence[str], *, ca: str | Path | None, docker_config: str | Path | None
) -> str | None:
    """One list pushed by digest, every tag in its repository, the registry open to anonymous
    requests: each tag gets the list's exact bytes, then is read back. None when that does
    not apply (nothing was changed, or only tags imagetools then sets again)."""
    if len(sources) != 1 or "@" not in sources[0]:
        return None
    source = sources[0]
    if any(repository(tag) != repository(source) for tag in tags):
        return None
    manifest = distribution.get(source, ca=ca, docker_config=docker_config)
    index = manifest.index() if manifest is not None else None
    if manifest is None or index is None:
        return None
    check_plan(plan_list([index]))
    for tag in tags:
        if not distribution.put(tag, manifest, ca=ca, docker_config=docker_config):
            return None
    for tag in tags:
        back = distribution.get(tag, ca=ca, docker_config=docker_config)
        if back is None:
            return None
        if back.digest != manifest.digest:
            raise RegistryError(
                f"{tag} points at {back.digest} after the push, not {manifest.digest}",
                hint="another push raced this one; rerun",
            )
    return manifest.digest


def _verify_published(where: Reach, tags: Sequence[str], plan: ListPlan) -> str:
    """Read every tag back: each must hold every planned image (digest, platform, os.version)
    and all must show one digest."""
    digests = {}
    for tag in tags:
        index = inspect_ref(where, tag)
        held = {(v.digest, canonical_platform(v.platform), v.os_version) for v in index.images}
        missing = [e for e in plan.entries if (e.digest, e.platform, e.os_version) not in held]
        if missing:
            what = ", ".join(f"{e.platform} from {e.source}" for e in missing)
            raise RegistryError(
                f"the list pushed to {tag} lacks {what}", hint="rerun; if it persists, inspect the sources"
            )
        digests[tag] = index.digest
    if len(set(digests.values())) != 1:
        shown = ", ".join(f"{t} -> {d}" for t, d in digests.items())
        raise RegistryError(
            f"the tags point at different lists after the push: {shown}", hint="another push raced this one; rerun"
        )
    return next(iter(digests.values()))
