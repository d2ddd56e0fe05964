"""`farm build`: check everything first, build by digest across the farm, publish, verify.

The flow for each target, in one direction (one module per stage):

    prepare   select_targets → prepare_target (pure: inputs, tags, secrets, options)
    schedule  every platform on a pinned node that is up, or allowed emulation (pure)
    command   the exact `docker buildx build` commands (pure)
    run       buildx via the Docker door, push by digest, live progress (progress.py)
    check     every platform is in what was pushed, read by digest
    verify    optional: each variant runs on a node of its platform, by digest
    publish   imagetools create points the tags at one list; only now do tags move
    report    per target and platform, as text or JSON
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from buildkit_farm.build.check import check_pushed, check_registries, check_sources
from buildkit_farm.build.command import dry_run_lines, invocations, redact, render_command
from buildkit_farm.build.prepare import BuildOptions, PreparedTarget, prepare
from buildkit_farm.build.publish import publish_target
from buildkit_farm.build.report import PlatformReport, TargetReport
from buildkit_farm.build.run import Echo, registry_trust, run_all, stderr_echo
from buildkit_farm.build.schedule import Assignment, NodeView, node_views, schedule
from buildkit_farm.build.verify import verify_target
from buildkit_farm.errors import FarmError


def build(
    config,
    names: Sequence[str] = (),
    options: BuildOptions = BuildOptions(),
    *,
    docker_config: str | None = None,
    up: bool = False,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    echo: Echo = stderr_echo,
    out: Echo = print,
) -> tuple[list[TargetReport], FarmError | None]:
    """Build, push, check and publish the selected targets, in file order.

    Returns the reports and the first error (the remaining targets are not started), so
    the caller can still write `--report` / `--json` for a failed run.
    """
    env = dict(os.environ if env is None else env)
    prepared = prepare(config, names, options, env=env, terminal=dry_run or sys.stderr.isatty())
    builder = config.builder.name

    if dry_run:
        # Pins come from the file alone; the farm is not asked whether nodes are up.
        nodes = tuple(NodeView(s.name, s.context, True, tuple(s.platforms)) for s in config.node_settings())
        with tempfile.TemporaryDirectory(prefix="farm-build-") as tmp:
            for target in prepared:
                assignments = schedule(
                    target.platforms, nodes, target=target.name, allow_emulation=target.allow_emulation
                )
                plan = invocations(
                    target, builder=builder, metadata_dir=Path(tmp), progress=options.progress, assignments=assignments
                )
                contexts = {n.name: n.context for n in nodes}
                verify = [(a.platform, contexts[a.node]) for a in assignments] if options.verify_run else []
                out(f"# target {target.name}")
                for line in dry_run_lines(
                    target,
                    plan,
                    builder=builder,
                    docker_config=docker_config,
                    verify=verify,
                    verify_cmd=options.verify_cmd,
                ):
                    out(line)
        return [], None

    state = _converged_state(config, docker_config=docker_config, up=up, echo=echo)
    nodes = node_views(config, state)
    scheduled = {
        t.name: schedule(t.platforms, nodes, target=t.name, allow_emulation=t.allow_emulation) for t in prepared
    }
    for target in prepared:
        for a in scheduled[target.name]:
            if a.emulated:
                echo(
                    f'farm: target "{target.name}": no node is pinned to {a.platform}; '
                    f'"{a.node}" will emulate it (allow_emulation)'
                )
    check_registries([tag for t in prepared for tag in t.tags])
    for target in prepared:
        check_sources(target, docker_config=docker_config, builder=builder)

    reports: list[TargetReport] = []
    for target in prepared:
        report = TargetReport(
            target=target.name, tags=list(target.tags), repo=target.repo, sources=list(target.sources)
        )
        reports.append(report)
        try:
            _build_one(
                target,
                scheduled[target.name],
                nodes,
                report,
                options=options,
                builder=builder,
                docker_config=docker_config,
                echo=echo,
            )
        except FarmError as err:
            report.ok, report.error = False, err.message
            return reports, err
    return reports, None


def _converged_state(config, *, docker_config: str | None, up: bool, echo: Echo):
    """The farm as observed once `farm up` has nothing left to do (or after doing it)."""
    from buildkit_farm.reconcile.apply import ensure_converged  # the reconciler's contract

    return ensure_converged(config, docker_config=docker_config, up=up, echo=lambda line: echo(f"farm up: {line}"))


def _build_one(
    target: PreparedTarget,
    assignments: Sequence[Assignment],
    nodes: Sequence[NodeView],
    report: TargetReport,
    *,
    options: BuildOptions,
    builder: str,
    docker_config: str | None,
    echo: Echo,
) -> None:
    start = time.monotonic()
    by_name = {n.name: n for n in nodes}
    for a in assignments:
        report.platforms.append(
            PlatformReport(
                platform=a.platform, node=a.node, emulated=a.emulated, buildkit_version=by_name[a.node].buildkit_version
            )
        )
    platform_reports = {p.platform: p for p in report.platforms}

    # 1. Build and push by digest: no tag of the user's moves here.
    with tempfile.TemporaryDirectory(prefix="farm-build-") as tmp:
        plan = invocations(
            target, builder=builder, metadata_dir=Path(tmp), progress=options.progress, assignments=assignments
        )
        for inv in plan:
            shown = redact(render_command(inv.kwargs, docker_config=docker_config), target.secrets)
            echo(f'farm: target "{target.name}": {shown}')
        with registry_trust():
            results = run_all(plan, target=target.name, assignments=assignments, docker_config=docker_config, echo=echo)
    built_refs = []
    for digest, durations, _ in results:
        built_refs.append(f"{target.repo}@{digest}")
        for platform, seconds in durations.items():
            platform_reports[platform].duration_s = seconds

    # 2. Check what was pushed, still by digest: every platform, each variant's digest.
    variant_digest: dict[str, str] = {}
    for inv, ref in zip(plan, built_refs):
        index = check_pushed(ref, inv.platforms, target=target.name, docker_config=docker_config, builder=builder)
        for v in index.variants:
            if not v.is_attestation and v.platform in inv.platforms:
                variant_digest[v.platform] = v.digest
                platform_reports[v.platform].digest = v.digest

    # 3. --verify-run: each variant on a node of its platform, by digest.
    if options.verify_run and plan:
        verify_target(
            target,
            assignments,
            by_name,
            variant_digest,
            report,
            options=options,
            docker_config=docker_config,
            echo=echo,
        )

    # 4. Publish: the user's tags move only now.
    publish_target(target, built_refs, variant_digest, report, docker_config=docker_config, builder=builder, echo=echo)
    report.duration_s = round(time.monotonic() - start, 2)
    echo(f'farm: target "{target.name}": pushed {target.tags[0]}@{report.digest}')
