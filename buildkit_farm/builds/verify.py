"""After the push, before the tags move (with `--verify-run`): every variant actually runs on a
node of its platform.

The book's warning: `CMD` is not checked at build time, so a variant can build fine and
fail at every start. Both checks look at the image by digest, so a failure leaves the
user's tags where they were.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from buildkit_farm.builds.report import VerifyReport
from buildkit_farm.docker import last_lines
from buildkit_farm.errors import BuildError

OUTPUT_LINES = 20


def run_variant(
    image: str,
    *,
    platform: str,
    context: str,
    command: str | None,
    docker_config: str | None,
) -> tuple[int, str]:
    """Run an image's variant once on a node's engine (via its Docker context).

    Returns (exit code, combined output). Talks to Docker.
    """
    from python_on_whales.exceptions import DockerException

    from buildkit_farm import docker as door

    docker = door.client(door.DockerPaths.resolve(docker_config), context)
    argv = shlex.split(command) if command else []
    lines: list[str] = []
    try:
        # Pull first, quietly, so the output is the container's own.
        docker.image.pull(image, quiet=True, platform=platform)
    except DockerException as err:
        raise NodeUnusable(context, last_lines(err.stderr, OUTPUT_LINES, sep="\n")) from None
    try:
        for _, chunk in docker.run(image, argv, platform=platform, remove=True, pull="never", stream=True):
            lines.append(chunk.decode(errors="replace").rstrip("\n"))
    except DockerException as err:
        return err.return_code, "\n".join(lines[-OUTPUT_LINES:])
    return 0, "\n".join(lines[-OUTPUT_LINES:])


class NodeUnusable(Exception):
    """The variant could not even be pulled on the node (engine or registry trouble):
    a fact about the farm, not about the image."""

    def __init__(self, context: str, detail: str) -> None:
        super().__init__(detail)
        self.context, self.detail = context, detail


def verify_run(
    image_for: Callable[[str], str],
    jobs: Sequence[tuple[str, str, str, bool]],
    *,
    command: str | None,
    docker_config: str | None,
    runner: Callable[..., tuple[int, str]] = run_variant,
) -> list[dict]:
    """Run every (platform, node, context, emulated) job, one thread per job.

    `image_for(platform)` gives the reference to run (a digest, never a tag).
    """

    def one(job: tuple[str, str, str, bool]) -> dict:
        platform, node, context, emulated = job
        try:
            code, output = runner(
                image_for(platform), platform=platform, context=context, command=command, docker_config=docker_config
            )
        except NodeUnusable as err:
            raise BuildError(
                f'--verify-run: could not pull {image_for(platform)} ({platform}) on node "{node}": {err.detail}',
                hint="the tags were not moved; check that the node's engine answers (`farm status`) "
                "and can reach the registry",
            ) from None
        return {
            "platform": platform,
            "node": node,
            "emulated": emulated,
            "command": command,
            "exit_code": code,
            "output": output,
        }

    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = [pool.submit(one, job) for job in jobs]
        return [f.result() for f in futures]


def failed_runs(results: Sequence[Mapping]) -> list[Mapping]:
    """The verify results whose command exited non-zero (pure)."""
    return [r for r in results if r["exit_code"] != 0]


def verify_target(target, assignments, by_name, variant_digest, report, *, options, docker_config, echo) -> None:
    """--verify-run for one target: every variant on a node of its platform; a failing one raises."""
    jobs = [(a.platform, a.node, by_name[a.node].context, a.emulated) for a in assignments]
    for platform, node, _, emulated in jobs:
        echo(f'farm: verify {platform} on node "{node}"' + (" (emulated)" if emulated else ""))
    results = verify_run(
        lambda platform: f"{target.repo}@{variant_digest[platform]}",
        jobs,
        command=options.verify_cmd,
        docker_config=docker_config,
    )
    report.verify = [VerifyReport(**r) for r in results]
    for r in results:
        echo(f'farm: verify {r["platform"]} on "{r["node"]}": exit {r["exit_code"]}')
        for line in r["output"].splitlines():
            echo(f"  {r['platform']} | {line}")
    failed = failed_runs(results)
    if failed:
        names = ", ".join(f'{r["platform"]} on node "{r["node"]}" (exit {r["exit_code"]})' for r in failed)
        last = "\n".join(
            f"  | {r['platform']}: {line}" for r in failed for line in _meaningful(r["output"].splitlines())[-3:]
        )
        raise BuildError(
            f'target "{target.name}": the image builds but does not run: {names}' + (f"\n{last}" if last else ""),
            hint="the tags were not moved; the book's lesson: CMD is only checked when a container starts",
        )


def _meaningful(lines: Sequence[str]) -> list[str]:
    # docker run's error ends with a blank line and a pointer to --help; keep the reason.
    return [l for l in lines if l.strip() and not l.startswith("Run 'docker run --help'")]
