"""`farm build`: check everything first, build every target at once across the farm, publish, verify.

The flow, in one direction (one module per stage):

    prepare   select_targets → prepare_target (pure: inputs, tags, secrets, options)
    schedule  every platform on a pinned node that is up, or allowed emulation (pure)
    command   the exact `docker buildx build` commands (pure)
    run       buildx via the Docker door, push by digest, live progress (progress.py)
    check     every platform is in what was pushed, read by digest
    verify    optional: each variant runs on a node of its platform, by digest
    publish   imagetools create points the tags at one list; only now do tags move
    report    per target and platform, as text, JSON and a CI step summary

Every selected target runs at once, each in its own thread with its own buildx processes,
so a failing target never cancels another (bake's one session would). Each target's tags
move once all its platforms built, checked (and ran); with `atomic`, no tag moves unless
every target got that far, and then all are published together.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from buildkit_farm.builds.check import check_pushed, check_registries, check_sources
from buildkit_farm.builds.command import (
    Invocation,
    bake_command,
    bake_names,
    dry_run_lines,
    invocations,
    redact,
    render_command,
)
from buildkit_farm.builds.prepare import BuildOptions, PreparedTarget, credential_warnings, prepare
from buildkit_farm.builds.progress import ProgressTracker
from buildkit_farm.builds.publish import Built, publish_all, publish_target
from buildkit_farm.builds.report import OUTCOME_FAILED, OUTCOME_PUBLISHED, PlatformReport, TargetReport, run_error
from buildkit_farm.builds.run import BakeItem, Cancel, Echo, registry_trust, run_all, run_bake, stderr_echo
from buildkit_farm.builds.schedule import Assignment, NodeView, node_views, schedule
from buildkit_farm.builds.threads import Gate, background, locked_echo
from buildkit_farm.builds.verify import verify_target
from buildkit_farm.errors import BuildError, FarmError


def build(
    config,
    names: Sequence[str] = (),
    options: BuildOptions = BuildOptions(),
    *,
    docker_config: str | None = None,
    up: bool = False,
    dry_run: bool = False,
    atomic: bool = False,
    env: Mapping[str, str] | None = None,
    echo: Echo = stderr_echo,
    out: Echo = print,
) -> tuple[list[TargetReport], FarmError | None]:
    """Build, push, check and publish the selected targets, all at once.

    Returns every target's report and the run's error (None when all published), so the
    caller can still write `--report` / `--json` for a failed run. Bad input raises before
    anything runs.
    """
    env = dict(os.environ if env is None else env)
    if config.bake is not None:  # targets from bake files, resolved by buildx (--var fills bake variables)
        from buildkit_farm.farmfile import bake

        config = bake.expand(config, variables=options.vars, docker_config=docker_config).config
    prepared = prepare(config, names, options, env=env, terminal=dry_run or sys.stderr.isatty())
    builder = config.builder.name
    for target in prepared:
        for warning in credential_warnings(target.build_args, target=target.name):
            echo(f"farm: warning: {warning}")

    if dry_run:
        _dry_run(config, prepared, options, docker_config=docker_config, out=out)
        return [], None

    background(_preload, daemon=True)
    echo = locked_echo(echo)
    needed = {p for t in prepared for p in t.platforms}  # a down node no target needs does not stop the build
    file_nodes = tuple(NodeView(s.name, s.context, True, tuple(s.platforms)) for s in config.node_settings())
    guess = _schedule_all(prepared, file_nodes)
    # The builds start while the farm is observed (about a second saved) when nothing can
    # change the schedule: no --up, no emulation, no sources to read first, and no pool (the
    # check may move a pin in buildx under a running bake: it would build on the old node
    # and the report would name the new one). Their output is held back until the farm
    # checked out; if it did not, they are stopped before anything is tagged and unseen.
    pooled = any(len(members) > 1 for members in config.pools().values())
    early = (
        not up
        and not pooled
        and not any(a.emulated for v in guess.values() for a in v)
        and not any(t.sources for t in prepared)
    )
    gate = Gate(echo)
    cancel = Cancel()
    report_start = time.monotonic()
    with shared_lock(docker_config), registry_trust(), ThreadPoolExecutor(max_workers=max(1, len(prepared))) as pool:
        started = None
        if early:
            check_registries([tag for t in prepared for tag in t.tags])
            started = pool.submit(_build_all, prepared, guess, options, builder, docker_config, gate.echo, cancel)
        try:
            if started is not None:  # beside the build: at a lower priority, so the build keeps the CPU
                state = background(  # read only (no --up, no pool to move): a daemon, never waited for on exit
                    _converged_state, config, daemon=True, docker_config=docker_config, up=up, echo=echo, needed=needed
                ).result()
            else:
                state = _converged_state(config, docker_config=docker_config, up=up, echo=echo, needed=needed)
            nodes = node_views(config, state)
            scheduled = _schedule_all(prepared, nodes)
        except BaseException:
            cancel.set()
            gate.discard()
            raise
        if started is not None and scheduled != guess:
            # The farm sends a platform elsewhere than the file said (e.g. a pool's first
            # choice is down): stop the early builds unseen, and build on the real schedule.
            cancel.set()
            gate.discard()
            started.result()
            started, cancel = None, Cancel()
        gate.open()
        for target in prepared:
            for a in scheduled[target.name]:
                if a.emulated:
                    echo(
                        f'farm: target "{target.name}": no node is pinned to {a.platform}; '
                        f'"{a.node}" will emulate it (allow_emulation)'
                    )
        if started is None:
            check_registries([tag for t in prepared for tag in t.tags])
            for target in prepared:
                check_sources(target, docker_config=docker_config, builder=builder)
            started = pool.submit(_build_all, prepared, scheduled, options, builder, docker_config, echo, cancel)
        outcomes = started.result()
        outcomes, scheduled, nodes = _retry_on_pools(
            config,
            prepared,
            outcomes,
            scheduled,
            nodes,
            needed=needed,
            options=options,
            builder=builder,
            docker_config=docker_config,
            echo=echo,
        )
        outcomes = _with_causes(outcomes, config, docker_config=docker_config)
        reports = _reports(prepared, scheduled, nodes)
        futures = [
            pool.submit(
                _finish_target,
                target,
                outcomes[target.name],
                scheduled[target.name],
                {n.name: n for n in nodes},
                report,
                options=options,
                builder=builder,
                docker_config=docker_config,
                echo=echo,
                publish=not atomic,
                start=report_start,
            )
            for target, report in zip(prepared, reports)
        ]
        built = [f.result() for f in futures]
    if atomic:
        publish_all(
            [(t, b) for t, b in zip(prepared, built) if b is not None],
            {r.target: r for r in reports},
            held=not all(r.ok for r in reports),
            docker_config=docker_config,
            builder=builder,
            echo=echo,
        )
    return reports, run_error(reports, atomic=atomic)


def shared_lock(docker_config: str | None) -> AbstractContextManager[object]:
    """The farm lock, held shared for the whole build, so `farm up`/`down` (exclusive) wait.

    The lock is reentrant within a process (reconcile/lock.py): `--up` and pool moves take
    it exclusively inside, which converts it for their duration.
    """
    from buildkit_farm.docker import DockerPaths
    from buildkit_farm.reconcile import lock

    return lock.hold(DockerPaths.resolve(docker_config).farm_dir, shared=True)


def _schedule_all(prepared: Sequence[PreparedTarget], nodes: Sequence[NodeView]) -> dict[str, tuple[Assignment, ...]]:
    return {t.name: schedule(t.platforms, nodes, target=t.name, allow_emulation=t.allow_emulation) for t in prepared}


def _reports(
    prepared: Sequence[PreparedTarget], scheduled: Mapping[str, Sequence[Assignment]], nodes: Sequence[NodeView]
) -> list[TargetReport]:
    by_name = {n.name: n for n in nodes}
    reports = []
    for t in prepared:
        report = TargetReport(target=t.name, tags=list(t.tags), repo=t.repo, sources=list(t.sources))
        report.platforms = [
            PlatformReport(a.platform, a.node, a.emulated, by_name[a.node].buildkit_version) for a in scheduled[t.name]
        ]
        reports.append(report)
    return reports


def _build_all(prepared, scheduled, options, builder, docker_config, echo, cancel) -> dict:
    return build_all(
        prepared, scheduled, options=options, builder=builder, docker_config=docker_config, echo=echo, cancel=cancel
    )


def _dry_run(config, prepared, options: BuildOptions, *, docker_config: str | None, out: Echo) -> None:
    # Pins come from the file alone; the farm is not asked whether nodes are up.
    builder = config.builder.name
    nodes = tuple(NodeView(s.name, s.context, True, tuple(s.platforms)) for s in config.node_settings())
    contexts = {n.name: n.context for n in nodes}
    baked: list[str] = []
    with tempfile.TemporaryDirectory(prefix="farm-build-") as tmp:
        for target in prepared:
            assignments = schedule(target.platforms, nodes, target=target.name, allow_emulation=target.allow_emulation)
            plan = invocations(
                target, builder=builder, metadata_dir=Path(tmp), progress=options.progress, assignments=assignments
            )
            verify = [(a.platform, contexts[a.node]) for a in assignments] if options.verify_run else []
            out(f"# target {target.name}")
            for line in dry_run_lines(
                target, plan, builder=builder, docker_config=docker_config, verify=verify, verify_cmd=options.verify_cmd
            ):
                out(line)
            if plan and not any(a.emulated for a in assignments):
                baked.append(target.name)
    if baked:
        # The builds above do not run one by one: they are one bake (the definition is a
        # temporary file holding exactly their settings); each target's checks and
        # publishing follow as soon as the bake is done.
        out(f"# the builds of {', '.join(baked)} run at once, as one bake of those same settings:")
        argv = bake_command(
            Path("<run>.json"),
            builder=builder,
            metadata_file=Path("<metadata>.json"),
            progress=options.progress,
            docker_config=docker_config,
        )
        out(shlex.join(argv))
    if prepared:
        from buildkit_farm.registry.distribution import SWITCH_ENV

        out(
            "# a registry that answers without credentials gets the reads and the tag moves above as "
            f"requests to its HTTP API instead (the same effect, no process each); {SWITCH_ENV}=off runs them as shown"
        )


def _preload() -> None:
    # What the steps after the build import, loaded beside the build rather than after it.
    # Not python-on-whales (~0.3 s of CPU): the build itself never needs it, only the
    # fallbacks that go through imagetools, which import it when they run.
    import buildkit_farm.registry.publish
    import buildkit_farm.registry.read  # noqa: F401


def _converged_state(config, *, docker_config: str | None, up: bool, echo: Echo, needed=None, exclude=()):
    """The farm as observed once `farm up` has nothing left to do (or after doing it); pool
    pins moved to each pool's first healthy node, observed now. `needed`: the platforms the
    build needs (a down node no target needs does not stop it); `exclude`: nodes to leave out."""
    from buildkit_farm.reconcile.converge import ensure_converged  # the reconciler's contract

    return ensure_converged(
        config.desired,
        docker_config=docker_config,
        up=up,
        echo=lambda line: echo(f"farm up: {line}"),
        needed=needed,
        exclude=exclude,
    )


def _with_causes(outcomes: dict, config, *, docker_config: str | None = None) -> dict:
    """Each failed build's hint names its real cause where BuildKit's log shows it
    (`causes.push_hint`): e.g. a loopback registry that BuildKit's own container cannot reach,
    or one that wants a login (named with the docker config the login must be in)."""
    from buildkit_farm.causes import push_hint, refused_push
    from buildkit_farm.docker import DockerPaths

    host_network = all(dict(s.driver_opts).get("network") == "host" for s in config.node_settings())
    for name, outcome in outcomes.items():
        if isinstance(outcome, BuildError):
            cause = push_hint(outcome.message, driver=config.builder.driver, host_network=host_network)
            if cause and refused_push(outcome.message):  # said first, in the message: reports keep it too
                where = DockerPaths.resolve(docker_config).docker_config
                outcome.message = f'target "{name}": {cause} (farm uses the logins in {where})\n{outcome.message}'
                cause = None
            if cause:
                rest = (outcome.hint or "").split(". ", 1)[-1] if outcome.hint else ""
                outcome.hint = f"{cause}; {rest}" if rest else cause
    return outcomes


def _retry_on_pools(config, prepared, outcomes, scheduled, nodes, *, needed, options, builder, docker_config, echo):
    """After the builds: the targets that failed because a node they built on stopped
    (observed now) are built once more, their platforms on the next healthy node of their
    pools. A failure of the build itself (the node still runs) is not retried. Returns the
    outcomes, schedule and nodes as they are after it."""
    failed = [t for t in prepared if isinstance(outcomes[t.name], BuildError)]
    if not failed:
        return outcomes, scheduled, nodes
    from buildkit_farm.reconcile import converge

    now = {n.name: n for n in converge.status(config.desired, docker_config=docker_config).nodes}
    pooled = {p for p, members in config.pools().items() if len(members) > 1}
    dead = set()
    retry = []
    for target in failed:
        used = {a.node for a in scheduled[target.name] if not a.emulated}
        gone = {name for name in used if name in now and now[name].status != "running"}
        lost = [a.platform for a in scheduled[target.name] if a.node in gone]
        if gone and all(p in pooled for p in lost):
            dead |= gone
            retry.append(target)
            echo(
                f'farm: target "{target.name}": node {", ".join(sorted(gone))} stopped during the build; '
                f"retrying {', '.join(lost)} once on the next healthy node of its pool"
            )
    if not retry:
        return outcomes, scheduled, nodes
    try:
        state = _converged_state(config, docker_config=docker_config, up=False, echo=echo, needed=needed, exclude=dead)
    except FarmError as why:
        echo(f"farm: no retry: {why.message}")
        return outcomes, scheduled, nodes
    nodes = node_views(config, state)
    scheduled = {**scheduled, **_schedule_all(retry, nodes)}
    again = build_all(
        retry, scheduled, options=options, builder=builder, docker_config=docker_config, echo=echo, cancel=Cancel()
    )
    return {**outcomes, **again}, scheduled, nodes


@dataclass(frozen=True)
class Pushed:
    """One build's outcome: the platforms it built, the digest it pushed, each platform's seconds."""

    platforms: tuple[str, ...]
    digest: str
    durations: Mapping[str, float]


Results = list[Pushed]


def build_all(
    prepared: Sequence[PreparedTarget],
    scheduled: Mapping[str, Sequence[Assignment]],
    *,
    options: BuildOptions,
    builder: str,
    docker_config: str | None,
    echo: Echo,
    cancel: Cancel | None = None,
) -> dict[str, Results | FarmError]:
    """Build every target at once, pushing by digest: per target its results, or its error.

    The targets go into one `docker buildx bake` (one session: the nodes are reached and
    each context sent once). Two kinds are built on their own instead, beside the bake:
    - a target with an emulated platform: buildx resolves the nodes of a bake as a whole,
      and one unpinned platform anywhere makes it re-match every platform of every target
      (seen on the lab: a pinned two-node build then landed on one node);
    - after a failed bake, every target that did not fail itself: bake stops all builds at
      the first failure, so a failing target never costs another its build.
    """
    many = len(prepared) > 1
    outcomes: dict[str, Results | FarmError] = {t.name: [] for t in prepared}
    with tempfile.TemporaryDirectory(prefix="farm-build-") as tmp:
        plans = {
            t.name: invocations(
                t, builder=builder, metadata_dir=Path(tmp), progress=options.progress, assignments=scheduled[t.name]
            )
            for t in prepared
        }
        for target in prepared:
            for inv in plans[target.name]:
                shown = redact(render_command(inv.kwargs, docker_config=docker_config), target.secrets)
                echo(f'farm: target "{target.name}": {shown}')

        def alone(target: PreparedTarget) -> Results | FarmError:
            plan = plans[target.name]
            try:
                results = run_all(
                    plan,
                    target=target.name,
                    assignments=scheduled[target.name],
                    docker_config=docker_config,
                    echo=echo,
                    name=target.name if many else "",
                )
            except FarmError as err:
                return err
            return [Pushed(inv.platforms, digest, durations) for inv, (digest, durations, _) in zip(plan, results)]

        emulating = [t for t in prepared if plans[t.name] and any(a.emulated for a in scheduled[t.name])]
        baked = [t for t in prepared if plans[t.name] and t not in emulating]
        with ThreadPoolExecutor(max_workers=max(1, len(prepared))) as pool:
            on_their_own = {t.name: pool.submit(alone, t) for t in emulating}
            if baked:
                # None: cancelled by another's failure, built again just below
                baked_outcomes = _bake_all(baked, plans, scheduled, options, builder, docker_config, echo, cancel, many)
                outcomes.update(baked_outcomes)  # type: ignore[arg-type]
            again = [t for t in baked if outcomes[t.name] is None]
            if again:
                echo(
                    "farm: bake stopped every build at the first failure; building "
                    f"{', '.join(t.name for t in again)} again, each on its own"
                )
                on_their_own.update({t.name: pool.submit(alone, t) for t in again})
            for name, future in on_their_own.items():
                outcomes[name] = future.result()
    return outcomes


def _bake_all(
    targets: Sequence[PreparedTarget],
    plans: Mapping[str, Sequence[Invocation]],
    scheduled: Mapping[str, Sequence[Assignment]],
    options: BuildOptions,
    builder: str,
    docker_config: str | None,
    echo: Echo,
    cancel: Cancel | None,
    many: bool,
) -> dict[str, Results | FarmError | None]:
    """The targets in one bake: per target its results, its own error, or None (cancelled by
    another's failure: to build again)."""
    items: list[BakeItem] = []
    for target in targets:
        plan = plans[target.name]
        for inv in plan:
            parts = [p for p in (target.name if many else "", inv.label if len(plan) > 1 else "") if p]
            items.append(
                BakeItem(
                    name="",
                    target=target.name,
                    inv=inv,
                    assignments=scheduled[target.name],
                    tracker=ProgressTracker(inv.platforms, start=time.monotonic()),
                    prefix=f"[{'/'.join(parts)}] " if parts else "",
                )
            )
    for item, name in zip(items, bake_names([(i.target, i.inv) for i in items])):
        item.name = name
    echo(f"farm: building {len(items)} image(s) of {len(targets)} target(s) at once (one buildx bake)")
    ok = run_bake(
        items, builder=builder, progress=options.progress, docker_config=docker_config, echo=echo, cancel=cancel
    )
    out: dict[str, Results | FarmError | None] = {t.name: [] for t in targets}
    if cancel is not None and cancel.is_set():
        return {t.name: BuildError("stopped: the farm did not check out") for t in targets}
    for item in items:
        if ok:
            digest, durations, _ = item.result  # type: ignore[misc]
            out[item.target].append(Pushed(item.inv.platforms, digest, durations))  # type: ignore[union-attr]
        elif item.error is not None:
            out[item.target] = item.error
    if not ok:
        for name, value in out.items():
            if not isinstance(value, FarmError):
                out[name] = None
    return out


def _finish_target(
    target: PreparedTarget,
    outcome: Results | FarmError,
    assignments: Sequence[Assignment],
    by_name: Mapping[str, NodeView],
    report: TargetReport,
    *,
    options: BuildOptions,
    builder: str,
    docker_config: str | None,
    echo: Echo,
    publish: bool,
    start: float,
) -> Built | None:
    """One built target (its own thread): check, verify-run, and publish unless the run is
    atomic. A failure is recorded in its report, never raised: the others go on."""
    try:
        if isinstance(outcome, FarmError):
            raise outcome
        built = _check(
            target,
            outcome,
            assignments,
            by_name,
            report,
            options=options,
            builder=builder,
            docker_config=docker_config,
            echo=echo,
        )
        if publish:
            publish_target(
                target,
                built.refs,
                built.variant_digest,
                report,
                docker_config=docker_config,
                builder=builder,
                echo=echo,
                known=built.indexes,
            )
            report.outcome = OUTCOME_PUBLISHED
            echo(f'farm: target "{target.name}": pushed {target.tags[0]}@{report.digest}')
        return built
    except FarmError as err:
        report.ok, report.outcome, report.error, report.exc = False, OUTCOME_FAILED, err.message, err
        echo(f'farm: target "{target.name}": FAILED: {err.message}')
        return None
    finally:
        report.duration_s = round(time.monotonic() - start, 2)


def _check(
    target: PreparedTarget,
    results: Results,
    assignments: Sequence[Assignment],
    by_name: Mapping[str, NodeView],
    report: TargetReport,
    *,
    options: BuildOptions,
    builder: str,
    docker_config: str | None,
    echo: Echo,
) -> Built:
    platform_reports = {p.platform: p for p in report.platforms}
    built_refs = []
    for pushed in results:
        built_refs.append(f"{target.repo}@{pushed.digest}")
        for platform, seconds in pushed.durations.items():
            platform_reports[platform].duration_s = seconds

    # Check what was pushed, still by digest: every platform, each variant's digest.
    variant_digest: dict[str, str] = {}
    indexes = []
    for platforms, ref in zip((p.platforms for p in results), built_refs):
        index = check_pushed(ref, platforms, target=target.name, docker_config=docker_config, builder=builder)
        indexes.append(index)
        for v in index.variants:
            if not v.is_attestation and v.platform in platforms:
                variant_digest[v.platform] = v.digest
                platform_reports[v.platform].digest = v.digest

    # --verify-run: each variant on a node of its platform, by digest.
    if options.verify_run and built_refs:
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
    return Built(tuple(built_refs), variant_digest, tuple(indexes))
