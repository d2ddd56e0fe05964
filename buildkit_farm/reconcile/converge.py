"""The whole flow of `farm up`, `plan`, `status` and `down`, under the lock:

    observe → make_plan → (print) → apply_plan → observe → record → observe → plan again

The last plan must be all no-ops and every node must verify (running, BuildKit version,
pinned platforms detected), or `NotConverged` says what differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from buildkit_farm.docker import DockerPaths
from buildkit_farm.errors import NotConverged
from buildkit_farm.reconcile import lock
from buildkit_farm.reconcile.apply import Report, apply_plan, record_buildkits
from buildkit_farm.reconcile.names import buildx_node_name
from buildkit_farm.reconcile.observe import (
    FarmState,
    ObservedBuildkit,
    Prefetch,
    observe,
)
from buildkit_farm.reconcile.plan import Plan, make_down_plan, make_plan
from buildkit_farm.reconcile.status import NodeStatus, node_statuses, verify

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

    @property
    def docker_config(self) -> str:
        return str(self.paths.docker_config)


@dataclass(frozen=True)
class UpResult:
    plan: Plan  # what was (or, with --dry-run, would be) done
    applied: bool
    status: FarmStatus | None  # None for a dry run that has changes to make


def _status(desired: Desired, state: FarmState) -> FarmStatus:
    by_file = {}
    for s in desired.nodes:
        bk = state.buildkits.get(buildx_node_name(desired.builder.name, s.name))
        if bk is not None:
            by_file[s.name] = bk
    return FarmStatus(
        builder=desired.builder.name.lower(),
        paths=state.paths,
        nodes=node_statuses(desired, state),
        buildkits=MappingProxyType(by_file),
        state=state,
    )


def _verified(desired: Desired, state: FarmState) -> FarmStatus:
    status = _status(desired, state)
    problems = verify(status.nodes)
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


def _remaining(plan: Plan) -> str:
    return "; ".join(f"{s.action.symbol} {s.kind} {s.name} ({s.reason})" for s in plan.changes)


def plan(desired: Desired, *, docker_config: str | Path | None = None) -> tuple[Plan, FarmState]:
    """What `farm up` would do; reads only."""
    state = observe(desired, docker_config=docker_config)
    return make_plan(desired, state), state


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
    with lock.hold(paths.farm_dir, timeout=lock_timeout, on_wait=echo):
        return _converge(desired, paths, docker_config=docker_config, **options)


def _converge(
    desired: Desired,
    paths: DockerPaths,
    *,
    docker_config: str | Path | None,
    dry_run: bool = False,
    on_plan: Callable[[Plan], None] | None = None,
    report: Report | None = None,
    prefetch: Prefetch | None = None,
) -> UpResult:
    """The flow itself; the caller holds the lock."""
    state = observe(desired, docker_config=docker_config, prefetch=prefetch)
    first = make_plan(desired, state)
    if on_plan:
        on_plan(first)
    if dry_run:
        return UpResult(first, False, None if first.changes else _status(desired, state))
    if first.converged:
        status_ = _verified(desired, state)
        record_buildkits(paths, desired, state, frozenset())  # keeps what a probe learnt
        return UpResult(first, False, status_)
    touched = apply_plan(first, paths, report=report)
    after = observe(desired, docker_config=docker_config)
    record_buildkits(paths, desired, after, touched)
    final_state = observe(desired, docker_config=docker_config)
    final = make_plan(desired, final_state)
    if final.changes:
        raise NotConverged(
            f"after applying, the farm still differs from {desired.file}: {_remaining(final)}",
            hint="rerun `farm up`; if it keeps differing, `farm plan` shows what and why",
        )
    return UpResult(first, True, _verified(desired, final_state))


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
) -> Plan:
    """Remove the builder and the contexts the farm owns, and nothing else."""
    paths = DockerPaths.resolve(docker_config)
    with lock.hold(paths.farm_dir, timeout=lock_timeout, on_wait=echo):
        state = observe(desired, docker_config=docker_config)
        the_plan = make_down_plan(desired, state, keep_state=keep_state)
        if on_plan:
            on_plan(the_plan)
        if not dry_run:
            apply_plan(the_plan, paths, report=report)
        return the_plan


def ensure_converged(
    desired: Desired,
    *,
    docker_config: str | Path | None = None,
    up: bool = False,
    echo: Echo | None = None,
) -> FarmStatus:
    """For the build: the farm as observed, once nothing is left to change.

    Without `up`, raises `NotConverged` saying what `farm up` would change; with it,
    applies the changes first. Returns each node's status, BuildKit version and platforms.
    """
    if up:
        result = converge(desired, docker_config=docker_config, echo=echo)
        assert result.status is not None
        return result.status
    paths = DockerPaths.resolve(docker_config)
    with lock.hold(paths.farm_dir, on_wait=echo, shared=True):  # a check: builds share it
        state = observe(desired, docker_config=docker_config)
        the_plan = make_plan(desired, state)
        if the_plan.changes:
            raise NotConverged(
                f"the farm does not match {desired.file}; `farm up` would: {_remaining(the_plan)}",
                hint=f"run `farm up -f {desired.file}` first, or pass --up",
            )
        status_ = _verified(desired, state)
        record_buildkits(paths, desired, state, frozenset())
        return status_
