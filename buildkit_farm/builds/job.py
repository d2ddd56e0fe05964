"""`farm build`: the stages in order, each a room of its own.

    resolve   resolve.py, schedule.py   targets (from the desired state), --var, overrides, secrets; nodes
    plan      plan.py, command.py       ONE RunPlan: what is built where, the exact bakes, checks, tag moves
    run       run.py, progress.py       the plan's bakes through the process door, pushed by digest
    verify    verify.py, check.py       every platform is in what was pushed; --verify-run runs each variant
    publish   publish.py                imagetools create points the tags at one list; only now do tags move
    report    report.py                 per target and platform, as text, JSON and a CI step summary

`--dry-run` prints the plan made from the farm file's pins and stops. Otherwise the farm is
checked with `farm up`'s own observe and plan (`reconcile.converge.ensure_converged`: it
applies pool moves only, or everything with `--up`), the plan is made again from the nodes
as observed, and that value runs. Every target of the run builds at once; a failing target
never cancels another's build; each target's tags move once all its platforms built,
checked (and ran); with `atomic`, no tag moves unless every target got that far. The farm
lock is taken once, shared, for the whole run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from buildkit_farm import buildx_version
from buildkit_farm.builds.check import check_registries, check_sources
from buildkit_farm.builds.plan import RunPlan, TargetPlan, file_nodes, make_plan, render
from buildkit_farm.builds.publish import Built, publish_all, publish_target
from buildkit_farm.builds.report import Outcome, PlatformReport, TargetReport, run_error
from buildkit_farm.builds.resolve import BuildOptions, credential_warnings, resolve
from buildkit_farm.builds.run import Cancel, Echo, Results, registry_trust, run_builds, stderr_echo, with_causes
from buildkit_farm.builds.schedule import NodeView, node_views
from buildkit_farm.builds.threads import Gate, background, locked_echo
from buildkit_farm.builds.verify import built_only, verify_built
from buildkit_farm.errors import BuildError, FarmError
from buildkit_farm.reconcile.prefetch import Prefetch, drains_seen

if TYPE_CHECKING:
    from buildkit_farm.farmfile.desired import Desired

Outcomes = dict[str, "Results | FarmError"]


def build(
    desired: Desired,
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
    on_wait: Callable[[str], None] | None = None,
    drains: Prefetch | None = None,
) -> tuple[list[TargetReport], FarmError | None]:
    """Resolve, plan, and (unless `dry_run`) run, verify, publish and report the selected targets.

    Returns every target's report and the run's error (None when all published), so the
    caller can still write `--report` / `--json` for a failed run. Bad input raises before
    anything runs. `on_wait`: told when the farm lock is held by a `farm up`. `drains`: the
    nodes' container inspects started as the command started (`Prefetch.for_file`); without
    them the builds wait for the farm's check (they cannot know whether a node is drained).
    """
    env = dict(os.environ if env is None else env)
    resolved = resolve(desired, names, options, env=env, terminal=dry_run or sys.stderr.isatty())
    for target in resolved:
        for warning in credential_warnings(target.build_args, target=target.name):
            echo(f"farm: warning: {warning}")
    # Pins from the file alone: what --dry-run shows, and what an early start builds on.
    # --dry-run asks no process, so it shows the command without buildx 0.20's --allow flags.
    guess = make_plan(
        resolved,
        file_nodes(desired.nodes),
        options,
        builder=desired.builder.name,
        docker_config=docker_config,
        atomic=atomic,
        fs_allow=not dry_run and buildx_version.require(docker_config).bake_needs_allow,
    )
    if dry_run:
        for line in render(guess):
            out(line)
        return [], None
    with shared_lock(docker_config, on_wait):
        return _run(desired, guess, options, up=up, echo=locked_echo(echo), drains=drains)


def shared_lock(
    docker_config: str | None, on_wait: Callable[[str], None] | None = None
) -> AbstractContextManager[object]:
    """The farm lock, held shared for the whole build, so `farm up`/`down` (exclusive) wait.

    Reentrant within a process (reconcile/lock.py): `--up` and pool moves take it
    exclusively inside, which converts it for their duration.
    """
    from buildkit_farm.docker import DockerPaths
    from buildkit_farm.reconcile import lock

    return lock.hold(DockerPaths.resolve(docker_config).farm_dir, shared=True, on_wait=on_wait)


def _run(
    desired: Desired, guess: RunPlan, options: BuildOptions, *, up: bool, echo: Echo, drains: Prefetch | None = None
) -> tuple[list, FarmError | None]:
    """Stages 3 to 6 under the lock: check the farm, run, verify, publish, report."""
    background(_preload, daemon=True)
    needed = {p for t in guess.targets for p in t.target.platforms}  # a down node no target needs does not stop it
    start = time.monotonic()
    with registry_trust(), ThreadPoolExecutor(max_workers=max(1, len(guess.targets))) as pool:
        plan, nodes, started = _start(desired, guess, options, pool, up=up, echo=echo, needed=needed, drains=drains)
        outcomes = started.result()
        outcomes, plan, nodes = _retry_on_pools(desired, plan, outcomes, nodes, options, needed=needed, echo=echo)
        outcomes = with_causes(outcomes, desired, docker_config=plan.docker_config)
        reports = _reports(plan, nodes)
        by_name = {n.name: n for n in nodes}
        futures = [
            pool.submit(_finish_target, t, outcomes[t.name], by_name, r, plan=plan, echo=echo, start=start)
            for t, r in zip(plan.targets, reports)
        ]
        built = [f.result() for f in futures]
    if plan.atomic:
        publish_all(
            [(t.target, b) for t, b in zip(plan.targets, built) if b is not None],
            {r.target: r for r in reports},
            held=not all(r.ok for r in reports),
            docker_config=plan.docker_config,
            builder=plan.builder,
            echo=echo,
        )
    return reports, run_error(reports, atomic=plan.atomic)


def _start(
    desired: Desired,
    guess: RunPlan,
    options: BuildOptions,
    pool: ThreadPoolExecutor,
    *,
    up: bool,
    echo: Echo,
    needed: set[str],
    drains: Prefetch | None = None,
) -> tuple[RunPlan, tuple[NodeView, ...], Future[Outcomes]]:
    """Check the farm and start the builds: the plan that runs, the nodes as observed, the builds' future.

    The builds start while the farm is observed (about a second saved) when nothing can
    change the plan: no --up, no emulation, no sources to read first, no pool (the check
    may move a pin in buildx under a running bake: it would build on the old node and the
    report would name the new one), this runner's builder as the file says (a drained node
    left it; undrained, it joins again in the check), and no node drained (a drained node
    takes no build, not even one stopped a moment later). Their output is held back until
    the farm checked out; if it did not, or it sends a platform elsewhere, they are stopped
    before anything is tagged and unseen.
    """
    gate, cancel = Gate(echo), Cancel()
    started: Future[Outcomes] | None = None
    if _early(desired, guess, up=up) and _as_filed(desired, guess.docker_config, drains):
        check_registries([tag for t in guess.targets for tag in t.target.tags] if guess.push else [])
        started = pool.submit(run_builds, guess, echo=gate.echo, cancel=cancel)
    try:
        if started is not None:  # beside the build, at a lower priority; read only: a daemon, never waited for
            check = background(_farm_state, desired, daemon=True, up=up, echo=echo, needed=needed, guess=guess)
            state = check.result()
        else:
            state = _farm_state(desired, up=up, echo=echo, needed=needed, guess=guess)
        nodes = node_views(desired.nodes, state)
        plan = make_plan(
            [t.target for t in guess.targets],
            nodes,
            options,
            builder=guess.builder,
            docker_config=guess.docker_config,
            atomic=guess.atomic,
            fs_allow=guess.fs_allow,
        )
    except BaseException:
        cancel.set()
        gate.discard()
        raise
    if started is not None and plan.schedule != guess.schedule:
        cancel.set()
        gate.discard()
        started.result()
        started = None
    gate.open()
    for t in plan.targets:
        for a in t.assignments:
            if a.emulated:
                why = f"{a.platform}: {a.why}" if a.why else f"no node is pinned to {a.platform}"
                echo(f'farm: target "{t.name}": {why}; "{a.node}" will emulate it (allow_emulation)')
    if started is None:
        check_registries([tag for t in plan.targets for tag in t.target.tags] if plan.push else [])
        for t in plan.targets:
            check_sources(t.target, docker_config=plan.docker_config, builder=plan.builder)
        started = pool.submit(run_builds, plan, echo=echo)
    return plan, nodes, started


def _early(desired: Desired, guess: RunPlan, *, up: bool) -> bool:
    pooled = any(len(members) > 1 for members in desired.pools().values())
    emulated = any(a.emulated for t in guess.targets for a in t.assignments)
    return not (up or pooled or emulated or any(t.target.sources for t in guess.targets))


def _as_filed(desired: Desired, docker_config: str | None, drains: Prefetch | None) -> bool:
    """Whether a bake started now goes where the file says: this runner's builder holds every
    node with the file's pins (no node left it, drained or down, and no pin moved), and no node
    is drained, read from the inspects started as the command started (in the ~0.2 s the file
    takes to load, most of an ssh hop). False when either is not known."""
    from buildkit_farm.docker import DockerPaths
    from buildkit_farm.reconcile.names import buildx_node_name
    from buildkit_farm.reconcile.observe import read_builder

    held = read_builder(DockerPaths.resolve(docker_config), desired.builder.name)
    filed = {buildx_node_name(desired.builder.name, s.name): sorted(s.platforms) for s in desired.nodes}
    if held is None or {n.name: sorted(n.platforms) for n in held.nodes} != filed:
        return False
    if desired.builder.driver != "docker-container":
        return True  # only a docker-container node can be drained
    seen = drains_seen(drains, list(filed)) if drains is not None else None
    return seen is not None and not seen


def _farm_state(desired: Desired, *, up: bool, echo: Echo, needed: set[str], guess: RunPlan, exclude=()):
    """The farm as observed once `farm up` has nothing left to do (or after doing it, with `up`):
    `farm up`'s own observe and plan (`ensure_converged`), pool pins moved to each pool's first
    healthy node. `needed`: the platforms the build needs; `exclude`: nodes to leave out."""
    from buildkit_farm.reconcile.converge import ensure_converged  # the reconciler's contract

    return ensure_converged(
        desired,
        docker_config=guess.docker_config,
        up=up,
        echo=lambda line: echo(f"farm up: {line}"),
        needed=needed,
        exclude=exclude,
    )


def _preload() -> None:
    # What the steps after the build import, loaded beside the build rather than after it.
    # Not python-on-whales (~0.3 s of CPU): the build itself never needs it, only the
    # fallbacks that go through imagetools, which import it when they run.
    import buildkit_farm.registry.publish
    import buildkit_farm.registry.read  # noqa: F401


def _reports(plan: RunPlan, nodes: Sequence[NodeView]) -> list[TargetReport]:
    by_name = {n.name: n for n in nodes}
    reports = []
    for t in plan.targets:
        report = TargetReport(
            target=t.name,
            tags=list(t.target.tags),
            repo=t.target.repo,
            sources=list(t.target.sources),
            pushed=plan.push,
        )
        report.platforms = [
            PlatformReport(a.platform, a.node, a.emulated, by_name[a.node].buildkit_version, why_emulated=a.why or None)
            for a in t.assignments
        ]
        reports.append(report)
    return reports


def _retry_on_pools(
    desired: Desired,
    plan: RunPlan,
    outcomes: Outcomes,
    nodes: tuple[NodeView, ...],
    options: BuildOptions,
    *,
    needed: set[str],
    echo: Echo,
) -> tuple[Outcomes, RunPlan, tuple[NodeView, ...]]:
    """After the builds: the targets that failed because a node they built on stopped
    (observed now) are built once more, their platforms on the next healthy node of their
    pools. A failure of the build itself (the node still runs) is not retried. Returns the
    outcomes, plan and nodes as they are after it."""
    if not any(isinstance(outcomes[t.name], BuildError) for t in plan.targets):
        return outcomes, plan, nodes
    from buildkit_farm.reconcile import converge

    now = {n.name: n.status for n in converge.status(desired, docker_config=plan.docker_config).nodes}
    pooled = {p for p, members in desired.pools().items() if len(members) > 1}
    retry, dead = _lost(plan, outcomes, now, pooled, echo=echo)
    if not retry:
        return outcomes, plan, nodes
    try:
        state = _farm_state(desired, up=False, echo=echo, needed=needed, guess=plan, exclude=dead)
        views = node_views(desired.nodes, state)
        again = make_plan(
            [t.target for t in retry],
            views,
            options,
            builder=plan.builder,
            docker_config=plan.docker_config,
            fs_allow=plan.fs_allow,
        )
    except FarmError as why:  # e.g. the standby was drained meanwhile
        echo(f"farm: no retry: {why.message}")
        return outcomes, plan, nodes
    nodes = views
    redone = {t.name: t for t in again.targets}
    plan = RunPlan(
        plan.builder,
        plan.docker_config,
        plan.progress,
        plan.verify_cmd,
        plan.atomic,
        tuple(redone.get(t.name, t) for t in plan.targets),
        plan.push,
        plan.fs_allow,
    )
    return {**outcomes, **run_builds(again, echo=echo, cancel=Cancel())}, plan, nodes


def _lost(
    plan: RunPlan, outcomes: Outcomes, now: Mapping[str, str], pooled: set[str], *, echo: Echo
) -> tuple[list[TargetPlan], set[str]]:
    """The failed targets to build again (a node they built on stopped, and each of its
    platforms has a pool), and the nodes that stopped."""
    dead: set[str] = set()
    retry: list[TargetPlan] = []
    for t in plan.targets:
        gone = {a.node for a in t.assignments if not a.emulated and now.get(a.node, "running") != "running"}
        lost = [a.platform for a in t.assignments if a.node in gone]
        if isinstance(outcomes[t.name], BuildError) and gone and all(p in pooled for p in lost):
            dead |= gone
            retry.append(t)
            echo(
                f'farm: target "{t.name}": node {", ".join(sorted(gone))} stopped during the build; '
                f"retrying {', '.join(lost)} once on the next healthy node of its pool"
            )
    return retry, dead


def _finish_target(
    t: TargetPlan,
    outcome: Results | FarmError,
    by_name: Mapping[str, NodeView],
    report: TargetReport,
    *,
    plan: RunPlan,
    echo: Echo,
    start: float,
) -> Built | None:
    """One built target (its own thread): verify, and publish unless the run is atomic.
    A failure is recorded in its report, never raised: the others go on."""
    try:
        if isinstance(outcome, FarmError):
            raise outcome
        if not plan.push:
            built_only(outcome, report)
            echo(f'farm: target "{t.name}": built on every node, not pushed (--no-push)')
            return None
        built = verify_built(t, outcome, by_name, report, plan=plan, echo=echo)
        if not plan.atomic:
            publish_target(
                t.target,
                built.refs,
                built.variant_digest,
                report,
                docker_config=plan.docker_config,
                builder=plan.builder,
                echo=echo,
                known=built.indexes,
            )
            report.outcome = Outcome.PUBLISHED
            echo(f'farm: target "{t.name}": pushed {t.target.tags[0]}@{report.digest}')
        return built
    except FarmError as err:
        report.ok, report.outcome, report.error, report.exc = False, Outcome.FAILED, err.message, err
        echo(f'farm: target "{t.name}": FAILED: {err.message}')
        return None
    finally:
        report.duration_s = round(time.monotonic() - start, 2)
