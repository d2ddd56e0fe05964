"""Publishing a built target: the user's tags move only now, to one list.

`registry.publish.publish_list` reads the list back (same digest under every tag, every
platform); the per-platform variant tags (`variant_tags = true`) are published first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from buildkit_farm.build.command import platform_slug
from buildkit_farm.build.prepare import PreparedTarget
from buildkit_farm.build.report import TargetReport
from buildkit_farm.registry.index import ImageIndex
from buildkit_farm.registry.publish import publish_list


def publish_target(
    target: PreparedTarget,
    built_refs: Sequence[str],
    variant_digest: Mapping[str, str],
    report: TargetReport,
    *,
    docker_config: str | None,
    builder: str,
    echo: Callable[[str], None],
    known: Sequence[ImageIndex] = (),
) -> None:
    """Point the target's tags (and its variant tags) at what was built and checked.

    `known`: the pushed lists as the check read them (by digest), so they are not read again.
    """
    if target.variant_tags:
        variants = {v.digest: v for ix in known for v in ix.images}
        for platform, digest in variant_digest.items():
            tag, ref = f"{target.repo}:{platform_slug(platform)}", f"{target.repo}@{digest}"
            v = variants.get(digest)
            seen = [ImageIndex(ref, digest, v.media_type, v.size, False, (v,))] if v else []
            publish_list([tag], [ref], docker_config=docker_config, builder=builder, known=seen)
            report.variant_tags.append(tag)
    echo(f'farm: target "{target.name}": publishing {", ".join(target.tags)}')
    report.digest = publish_list(
        list(target.tags),
        list(built_refs) + list(target.sources),
        docker_config=docker_config,
        builder=builder,
        known=known,
    )
