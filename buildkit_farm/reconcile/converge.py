"""The whole flow of `farm up`, `plan`, `status` and `down`, under the lock:

    observe → make_plan → (print) → apply_plan → observe → record → observe → plan again

The last plan must be all no-ops and every node must verify (running, BuildKit version,
pinned platforms detected), or `NotConverged` says what differs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from buildkit_farm.docker import DockerPaths
from buildkit_farm.errors import EngineUnreachable, NotConverged, UsageError
from buildkit_farm.reconcile import holds, lock, pools
from buildkit_farm.reconcile.apply import Report, apply_plan, record_buildkits
from buildkit_farm.reconcile.names import buildx_node_name
from buildkit_farm.reconcile.observe import (
    FarmState,
    ObservedBuildkit,
    Prefetch,
    observe,
)
from buildkit_farm.reconcile.plan import Plan, make_down_plan, make_plan
from buildkit_farm.reconcile.pools import pool_view
from buildkit_farm.reconcile.status import NodeStatus, node_statuses, verify
from buildkit_farm.reconcile.steps import Step, StepKind, StepMode

if TYPE_CHECKING:
    from buildkit_farm.farmfile.desired import Desired

Echo = Callable[[str], None]


@dataclass(frozen=True)
class FarmStatus:
    """The farm as observed: per file node, its status, BuildKit version and platforms."""

    builder: str  # the buildx builder name (`--builder`)
    paths: DockerPaths
    nodes: tuple[NodeStatus, ...]
    buildkits: Mapping[str, ObservedBuildkit]  # by the file's node name
    state: FarmState
    pools: tuple[pools.Pool, ...] = ()  # each pinned platform: active node, standbys, down
    warnings: tuple[str, ...] = ()  # e.g. a pool node that is down while its pools are served

    @property
    def docker_config(self) -> str:
        return str(self.paths.docker_config)

    @property
    def in_builder(self) -> tuple[str, ...]:
        """The file's nodes in this runner's builder, in buildx's order: the order buildx
        matches a platform no node pins in (a drained node is not among them)."""
        by_buildx = {n.buildx_node: n.name for n in self.nodes}
        builder = self.state.builder
        return tuple(by_buildx[n.name] for n in builder.nodes if n.name in by_buildx) if builder else ()


@dataclass(frozen=True)
class UpResult:
    plan: Plan  # what was (or, with --dry-run, would be) done
    applied: bool
    status: FarmStatus | None  # None for a dry run that has changes to make


def _status(desired: Desired, state: FarmState, *, warnings: tuple[str, ...] = ()) -> FarmStatus:
    nodes = node_statuses(desired, state)
    status_of = {n.name: n.status for n in nodes}
    drained = {n.name for n in nodes if n.drained}
    by_file = {}
    for s in desired.nodes:
        bk = state.buildkits.get(buildx_node_name(desired.builder.name, s.name))
        if bk is not None:
            by_file[s.name] = bk
    return FarmStatus(
        builder=desired.builder.name.lower(),
        paths=state.paths,
        nodes=nodes,
        buildkits=MappingProxyType(by_file),
        state=state,
        pools=pools.resolve(desired.nodes, status_of, drained=drained).pools,
        warnings=warnings,
    )


def _verified(
    desired: Desired, state: FarmState, *, needed: Collection[str] | None = None, exclude: Collection[str] = ()
) -> FarmStatus:
    # A down pool node whose platforms other nodes serve is a warning, not a problem.
    view = pool_view(desired, state, needed=needed, exclude=exclude)
    spare = view.spare
    status = _status(desired, state)
    problems = verify(tuple(n for n in status.nodes if n.name not in spare))
    warnings = tuple(_spare_warning(n, status, view) for n in status.nodes if n.name in spare)
    status = replace(status, warnings=warnings, pools=view.pools)
    if problems:
        emulation = any("pinned" in p for p in problems)
        raise NotConverged(
            "the farm is up but not usable: " + "; ".join(problems),
            hint="enable QEMU emulation on that engine (binfmt_misc with qemu-user-static) or unpin the platform"
            if emulation
            else "start the node's BuildKit daemon and check its address (`farm status`), then rerun `farm up`"
            if desired.builder.driver == "remote"
            else "check the node's engine (`farm status`), then rerun `farm up`",
        )
    return status


def _spare_warning(n: NodeStatus, status: FarmStatus, view: pools.PoolView) -> str:
    if n.drained:
        return f'node "{n.name}" is drained {n.drained}; {pools.standing_in(n.name, view)}'
    return f'node "{n.name}" is {n.status}' + (f" ({n.error})" if n.error else "") + f"; {_served(n.name, status)}"


def _served(name: str, status: FarmStatus) -> str:
    served = [f"{p.platform} on {p.active}" for p in status.pools if name in p.members and p.active]
    return "its pools are served: " + ", ".join(served) if served else "not needed by this run"


def _remaining(plan: Plan) -> str:
    return "; ".join(f"{s.action.symbol} {s.kind} {s.name} ({s.reason})" for s in plan.changes)


def plan(desired: Desired, *, docker_config: str | Path | None = None, reclaim: bool = False) -> tuple[Plan, FarmState]:
    """What `farm up` would do; reads only."""
    state = observe(desired, docker_config=docker_config)
    return make_plan(desired, state, reclaim=reclaim), state


def status(desired: Desired, *, docker_config: str | Path | None = None) -> FarmStatus:
    """Every node asked live for its BuildKit version and platforms."""
    return _status(desired, observe(desired, docker_config=docker_config, live=True))


def converge_file(
    file: str | Path,
    *,
    docker_config: str | Path | None = None,
    lock_timeout: float = lock.DEFAULT_TIMEOUT,
    echo: Echo | None = None,
    **options,
) -> UpResult:
    """`farm up` from a file: the lock first, then the engines are asked while the file loads."""
    paths = DockerPaths.resolve(docker_config)
    options.setdefault("guard", Guard(lock_timeout=lock_timeout, echo=echo))
    with lock.hold(paths.farm_dir, timeout=lock_timeout, on_wait=echo):
        prefetch = Prefetch.for_file(paths, file)
        try:
            from buildkit_farm.farmfile.load import load_config

            desired = load_config(file).desired
            return _converge(desired, paths, docker_config=docker_config, prefetch=prefetch, **options)
        finally:
            prefetch.discard()


def converge(
    desired: Desired,
    *,
    docker_config: str | Path | None = None,
    lock_timeout: float = lock.DEFAULT_TIMEOUT,
    echo: Echo | None = None,
    **options,
) -> UpResult:
    """Make the contexts and the builder match the file, then check that they do."""
    paths = DockerPaths.resolve(docker_config)
    options.setdefault("guard", Guard(lock_timeout=lock_timeout, echo=echo))
    with lock.hold(paths.farm_dir, timeout=lock_timeout, on_wait=echo):
        return _converge(desired, paths, docker_config=docker_config, **options)


@dataclass(frozen=True)
class Guard:
    """How a run treats other runners' work on the nodes it changes."""

    wait_timeout: float = holds.DEFAULT_WAIT  # for builds running on a node about to restart
    lock_ttl: float = holds.DEFAULT_TTL  # a node lock older than this is stale
    lock_timeout: float = lock.DEFAULT_TIMEOUT  # for another runner's node lock
    force: bool = False  # `farm down --force`: do not wait for running builds
    echo: Echo | None = None


def _converge(
    desired: Desired,
    paths: DockerPaths,
    *,
    docker_config: str | Path | None,
    dry_run: bool = False,
    on_plan: Callable[[Plan], None] | None = None,
    report: Report | None = None,
    needed: Collection[str] | None = None,
    prefetch: Prefetch | None = None,
    reclaim: bool = False,
    guard: Guard | None = None,
) -> UpResult:
    """The flow itself; the caller holds the lock. `needed`: see `ensure_converged`."""
    state = observe(desired, docker_config=docker_config, prefetch=prefetch)
    first = make_plan(desired, state, needed=needed, reclaim=reclaim)
    if on_plan:
        on_plan(first)
    if dry_run:
        return UpResult(first, False, None if first.changes else _status(desired, state))
    if first.converged:
        status_ = _verified(desired, state, needed=needed)
        record_buildkits(paths, desired, state, frozenset())  # keeps what a probe learnt
        return UpResult(first, False, status_)
    guard = guard or Guard()
    if state.record is not None or state.builder is None:
        record_buildkits(paths, desired, state, frozenset())  # what a probe learnt: not asked again
    to_lock, to_wait = holds.guarded(desired, state, first)
    reach = state.paths  # a node lock may go through a tcp:// endpoint: with the file's TLS files
    with holds.locked(reach, to_lock, ttl=guard.lock_ttl, timeout=guard.lock_timeout, echo=guard.echo):
        if to_lock:
            holds.wait_idle(reach, to_wait, timeout=guard.wait_timeout, echo=guard.echo)
            # Another runner may have changed these nodes while this one waited: plan again.
            state = observe(desired, docker_config=docker_config)
            first = make_plan(desired, state, needed=needed, reclaim=reclaim)
            if first.converged:
                return UpResult(first, False, _verified(desired, state, needed=needed))
        return _apply_and_check(desired, paths, first, docker_config=docker_config, report=report, needed=needed)


def _apply_and_check(
    desired: Desired,
    paths: DockerPaths,
    first: Plan,
    *,
    docker_config: str | Path | None,
    report: Report | None,
    needed: Collection[str] | None,
) -> UpResult:
    """Apply the plan, record what was made, and check that nothing is left to change."""
    touched = apply_plan(first, paths, report=report)
    after = observe(desired, docker_config=docker_config)
    record_buildkits(paths, desired, after, touched)
    final_state = observe(desired, docker_config=docker_config)
    final = make_plan(desired, final_state, needed=needed)
    if final.changes:
        raise NotConverged(
            f"after applying, the farm still differs from {desired.file}: {_remaining(final)}",
            hint="rerun `farm up`; if it keeps differing, `farm plan` shows what and why",
        )
    return UpResult(first, True, _verified(desired, final_state, needed=needed))


def down(
    desired: Desired,
    *,
    docker_config: str | Path | None = None,
    keep_state: bool = False,
    dry_run: bool = False,
    lock_timeout: float = lock.DEFAULT_TIMEOUT,
    echo: Echo | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    report: Report | None = None,
    guard: Guard | None = None,
) -> Plan:
    """Remove the builder and the contexts the farm owns, and nothing else; first wait for
    the builds running on its nodes (unless `guard.force`)."""
    paths = DockerPaths.resolve(docker_config)
    guard = guard or Guard(lock_timeout=lock_timeout, echo=echo)
    with lock.hold(paths.farm_dir, timeout=lock_timeout, on_wait=echo):
        state = observe(desired, docker_config=docker_config)
        the_plan = make_down_plan(desired, state, keep_state=keep_state)
        if on_plan:
            on_plan(the_plan)
        if dry_run:
            return the_plan
        to_lock, to_wait = holds.guarded(desired, state, the_plan)
        reach = state.paths  # with the file's TLS files, as in `_converge`
        with holds.locked(reach, to_lock, ttl=guard.lock_ttl, timeout=guard.lock_timeout, echo=guard.echo):
            if not guard.force:
                holds.wait_idle(reach, to_wait, timeout=guard.wait_timeout, echo=guard.echo)
            apply_plan(the_plan, paths, report=report)
        return the_plan


def ensure_converged(
    desired: Desired,
    *,
    docker_config: str | Path | None = None,
    up: bool = False,
    echo: Echo | None = None,
    needed: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> FarmStatus:
    """For the build: the farm as observed, once nothing is left to change.

    Without `up`, raises `NotConverged` saying what `farm up` would change; with it,
    applies the changes first. Either way, pool moves (a pin moving to the first healthy
    node of its pool, a down node leaving, a returning one rejoining) are applied here,
    observed just before the build. `needed`: the platforms the build needs (a down node
    needed by none does not stop it); `exclude`: nodes to leave out (one died during the
    build). Returns each node's status, BuildKit version and platforms.
    """
    if up:
        result = converge(desired, docker_config=docker_config, echo=echo, needed=needed)
        assert result.status is not None
        if needed is None and not exclude:
            return result.status
    paths = DockerPaths.resolve(docker_config)
    with lock.hold(paths.farm_dir, on_wait=echo, shared=True):  # a check: builds share it
        state = observe(desired, docker_config=docker_config)
        the_plan = make_plan(desired, state, needed=needed, exclude=exclude)
        moves = pool_moves(the_plan)
        if moves and len(moves) == len(the_plan.changes):
            # Pool moves change the builder: exclusive for them (other builds finish first).
            with lock.hold(paths.farm_dir, on_wait=echo):
                for step in moves:
                    if echo:
                        echo(f"pool: {step.action.symbol} {step.kind} {step.name}: {step.reason}")
                touched = apply_plan(replace(the_plan, steps=moves), paths)
                state = observe(desired, docker_config=docker_config)
                record_buildkits(paths, desired, state, touched)
                the_plan = make_plan(desired, state, needed=needed, exclude=exclude)
        if the_plan.changes:
            raise NotConverged(
                f"the farm does not match {desired.file}; `farm up` would: {_remaining(the_plan)}",
                hint=f"run `farm up -f {desired.file}` first, or pass --up",
            )
        status_ = _verified(desired, state, needed=needed, exclude=exclude)
        record_buildkits(paths, desired, state, frozenset())
        return status_


def pool_moves(the_plan: Plan) -> tuple[Step, ...]:
    """The plan's changes a build applies by itself: pins moving inside pools, down pool
    nodes and drained nodes leaving, returning (or undrained) ones rejoining (and their
    BuildKit started), and a node storing
    the stamp its container carries (a builder made before stamps, or by an older farm)."""
    out = []
    rejoining = set()
    for step in the_plan.changes:
        if step.kind is StepKind.NODE and step.mode in (
            StepMode.PIN,
            StepMode.LEAVE,
            StepMode.DRAINED,
            StepMode.JOIN,
            StepMode.STAMP,
        ):
            out.append(step)
            if step.mode is StepMode.JOIN:
                rejoining.add(step.name)
        elif step.kind is StepKind.BUILDKIT and (step.mode is StepMode.START or step.name in rejoining):
            out.append(step)
    return tuple(out)


@dataclass(frozen=True)
class DrainResult:
    node: str
    changed: bool  # False: it already was (or was not) drained
    running: tuple[str, ...]  # builds still running on it
    undo: bool = False

    @property
    def text(self) -> str:
        """What `farm drain`/`farm undrain` print."""
        if self.undo:
            return f"{self.node}: undrained" if self.changed else f"{self.node}: was not drained"
        first = f"{self.node}: drained" if self.changed else f"{self.node}: already drained"
        if self.running:
            return f"{first}\n{self.node}: {len(self.running)} build(s) still running: " + "; ".join(self.running)
        return f"{first}\n{self.node}: no build running; it can be serviced"


def drain(
    desired: Desired, node: str, *, docker_config: str | Path | None = None, reason: str = "", undo: bool = False
) -> DrainResult:
    """`farm drain NODE` (or, with `undo`, `farm undrain`): marked on the node's engine, so every runner sees it."""
    s = next((n for n in desired.nodes if n.name == node), None)
    if s is None:
        raise UsageError(
            f'no node "{node}" in {desired.file}', hint="one of: " + ", ".join(n.name for n in desired.nodes)
        )
    if s.driver != "docker-container":
        raise UsageError(
            f'node "{node}" uses the {s.driver} driver: a drain is held on a docker-container node\'s engine',
            hint="stop sending builds there by taking it out of the file instead",
        )
    state = observe(desired, docker_config=docker_config)
    paths = state.paths  # a node's engine by its endpoint: with the file's TLS files
    bn = buildx_node_name(desired.builder.name, node)
    bk = state.buildkits.get(bn)
    if bk is None or bk.status == "unreachable":
        raise EngineUnreachable(
            node=node, endpoint=s.endpoint or s.context, detail=(bk.error if bk else None) or "not observed"
        )
    ref = holds.node_ref(desired.builder.name, bk, s)
    changed = holds.undrain(paths, ref) if undo else holds.drain(paths, ref, reason=reason)
    running = holds.running_builds(paths, ref) if bk.status == "running" else ()
    return DrainResult(node=node, changed=changed, running=running, undo=undo)
