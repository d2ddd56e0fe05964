"""Publishing built targets: the user's tags move only now, each target's to one list.

`registry.publish.publish_list` reads the list back (same digest under every tag, every
platform); the per-platform variant tags (`variant_tags = true`) are published first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from buildkit_farm.builds.command import platform_slug
from buildkit_farm.builds.report import (
    OUTCOME_FAILED,
    OUTCOME_HELD,
    OUTCOME_INTERRUPTED,
    OUTCOME_PENDING,
    OUTCOME_PUBLISHED,
    TargetReport,
)
from buildkit_farm.builds.resolve import ResolvedTarget
from buildkit_farm.errors import FarmError
from buildkit_farm.registry.index import ImageIndex

# Seconds: the longest a Ctrl-C can go unseen while the lists are created.
SIGNAL_POLL = 0.25


def publish_target(
    target: ResolvedTarget,
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
    from buildkit_farm.registry.publish import publish_list  # after the build: not on its path

    if target.variant_tags:
        variants = {v.digest: v for ix in known for v in ix.images}
        for platform, digest in variant_digest.items():
            tag, ref = f"{target.repo}:{platform_slug(platform)}", f"{target.repo}@{digest}"
            v = variants.get(digest)
            seen = [ImageIndex(ref, digest, v.media_type, v.size, False, (v,))] if v else []
            publish_list([tag], [ref], docker_config=docker_config, builder=builder, known=seen, echo=echo)
            report.variant_tags.append(tag)
    echo(f'farm: target "{target.name}": publishing {", ".join(target.tags)}')
    report.digest = publish_list(
        list(target.tags),
        list(built_refs) + list(target.sources),
        docker_config=docker_config,
        builder=builder,
        known=known,
        echo=echo,
    )


@dataclass(frozen=True)
class Built:
    """What a target pushed by digest and checked: the refs of its lists and each variant's digest."""

    refs: tuple[str, ...]
    variant_digest: Mapping[str, str]
    indexes: tuple[ImageIndex, ...] = ()  # what check_pushed read, by digest: publish need not read it again


def publish_all(
    built: Sequence[tuple[ResolvedTarget, Built]],
    reports: Mapping[str, TargetReport],
    *,
    held: bool,
    docker_config: str | None,
    builder: str,
    echo: Callable[[str], None],
    publish: Callable[..., None] = publish_target,
) -> None:
    """`--atomic`: publish every target together, or (`held`) none of them.

    Lists are created concurrently. On Ctrl-C, no further `imagetools create` starts; the
    ones in flight finish, and each report says whether its tags moved (outcome
    "published") or not ("interrupted"), so a rerun of the same command completes it.
    """
    if held:
        for target, _ in built:
            report = reports[target.name]
            report.outcome = OUTCOME_HELD
            echo(f'farm: target "{target.name}": built and checked, tags not moved (--atomic: another target failed)')
        return
    stop = threading.Event()

    def one(target: ResolvedTarget, result: Built) -> None:
        report = reports[target.name]
        if stop.is_set():
            report.ok, report.outcome, report.error = False, OUTCOME_INTERRUPTED, "interrupted before its tags moved"
            return
        try:
            publish(
                target,
                result.refs,
                result.variant_digest,
                report,
                docker_config=docker_config,
                builder=builder,
                echo=echo,
            )
            report.outcome = OUTCOME_PUBLISHED
        except FarmError as err:
            report.ok, report.outcome, report.error, report.exc = False, OUTCOME_FAILED, err.message, err

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(built)))) as pool:
        futures: list[Future[None]] = []
        try:  # the submits too: a Ctrl-C may come while they are made, and must stop the rest
            for target, result in built:
                futures.append(pool.submit(one, target, result))
            # In slices: CPython runs a signal's handler between bytecodes, so a SIGINT that
            # lands just as this thread goes to sleep on a lock waits for that lock (seen in CI).
            while wait(futures, timeout=SIGNAL_POLL).not_done:
                pass
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            stop.set()
            echo("farm: interrupted: no further tag moves; waiting for the lists being created now")
            for future in futures:
                future.cancel()
            wait(futures)
            for target, _ in built:
                report = reports[target.name]
                if report.outcome == OUTCOME_PENDING:
                    report.ok, report.outcome, report.error = (
                        False,
                        OUTCOME_INTERRUPTED,
                        "interrupted before its tags moved",
                    )
            raise
