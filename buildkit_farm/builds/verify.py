"""Stage 4 of `farm build`, verify: after the push, before the tags move. Every platform is in
what was pushed (`check.check_pushed`), and with `--verify-run` every variant actually runs on
a node of its platform (through the process door). It may not move a tag.

The book's warning: `CMD` is not checked at build time, so a variant can build fine and
fail at every start. Both checks look at the image by digest, so a failure leaves the
user's tags where they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from buildkit_farm.builds.check import check_pushed
from buildkit_farm.builds.plan import RunPlan, TargetPlan
from buildkit_farm.builds.publish import Built
from buildkit_farm.builds.report import Outcome, TargetReport, VerifyReport
from buildkit_farm.builds.run import Results
from buildkit_farm.builds.schedule import NodeView
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
    """Run an image's variant once on a node's engine (via its Docker context), through the
    process door. Returns (exit code, its last output lines)."""
    from buildkit_farm import docker

    paths = docker.DockerPaths.resolve(docker_config)
    # Pull first, quietly, so the output is the container's own.
    pulled = docker.pull_variant(paths, context, image, platform)
    if pulled.returncode != 0:
        raise NodeUnusable(context, last_lines(pulled.stderr, OUTPUT_LINES, sep="\n"))
    code, lines = docker.run_variant(paths, context, image, platform, command, keep=OUTPUT_LINES)
    return code, "\n".join(lines)


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


def verify_built(
    t: TargetPlan,
    results: Results,
    by_name: Mapping[str, NodeView],
    report: TargetReport,
    *,
    plan: RunPlan,
    echo: Callable[[str], None],
) -> Built:
    """Stage 4 for one target: every platform is in what was pushed (read by digest), and with
    `--verify-run` every variant runs on a node of its platform. A failure raises; no tag moved."""
    platform_reports = {p.platform: p for p in report.platforms}
    refs = []
    for pushed in results:
        refs.append(f"{t.target.repo}@{pushed.digest}")
        for platform, seconds in pushed.durations.items():
            platform_reports[platform].duration_s = seconds
    variant_digest: dict[str, str] = {}
    indexes = []
    for pushed, ref in zip(results, refs):
        index = check_pushed(
            ref, pushed.platforms, target=t.name, docker_config=plan.docker_config, builder=plan.builder
        )
        indexes.append(index)
        for v in index.variants:
            if not v.is_attestation and v.platform in pushed.platforms:
                variant_digest[v.platform] = v.digest
                platform_reports[v.platform].digest = v.digest
    if t.verify and refs:
        verify_target(t, variant_digest, report, plan=plan, echo=echo)
    return Built(tuple(refs), variant_digest, tuple(indexes))


def built_only(results: Results, report: TargetReport) -> None:
    """Stage 4 under --no-push: every platform of the target was built (each on its node) and
    buildx named what it made; nothing is read from or written to a registry."""
    platform_reports = {p.platform: p for p in report.platforms}
    done = {platform for built in results for platform in built.platforms if built.digest}
    missing = [p for p in platform_reports if p not in done]
    if missing:
        raise BuildError(
            f'target "{report.target}": buildx reported no image for {", ".join(missing)}',
            hint="rerun with --progress plain to see each node's build",
        )
    for built in results:
        for platform, seconds in built.durations.items():
            platform_reports[platform].duration_s = seconds
    report.digest = results[0].digest if len(results) == 1 else None  # one list only when one build made it
    report.outcome = Outcome.BUILT


def verify_target(
    t: TargetPlan,
    variant_digest: Mapping[str, str],
    report: TargetReport,
    *,
    plan: RunPlan,
    echo: Callable[[str], None],
) -> None:
    """--verify-run for one target: every variant on a node of its platform; a failing one raises."""
    jobs = [(j.platform, j.node, j.context, j.emulated) for j in t.verify]
    for job in t.verify:
        echo(f'farm: verify {job.platform} on node "{job.node}"' + (" (emulated)" if job.emulated else ""))
    results = verify_run(
        lambda platform: f"{t.target.repo}@{variant_digest[platform]}",
        jobs,
        command=plan.verify_cmd,
        docker_config=plan.docker_config,
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
            f'target "{t.name}": the image builds but does not run: {names}' + (f"\n{last}" if last else ""),
            hint="the tags were not moved; the book's lesson: CMD is only checked when a container starts",
        )


def _meaningful(lines: Sequence[str]) -> list[str]:
    # docker run's error ends with a blank line and a pointer to --help; keep the reason.
    return [l for l in lines if l.strip() and not l.startswith("Run 'docker run --help'")]
