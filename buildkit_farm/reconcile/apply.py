"""Applying a plan: the ONLY module that changes Docker. One function per (kind, action).

Before each buildx command that rewrites the builder's instance file, its bytes are kept;
if the command fails (or is interrupted), they are written back. buildx's own rollback
after a failed `--append` copies nodes with `Node.Copy`, which drops every node's pinned
platforms and config files; restoring the bytes undoes that. A copy of the file as it was
before the whole apply is also left in `<docker config>/buildkit-farm/<builder>.instance.bak`.

A builder *replace* removes the builder first (`buildx rm --keep-state`): when a later step
fails or is interrupted, the instance file from before the replace is written back, so a
failed apply never leaves the farm without a builder. Every error says which steps were
applied before it, and Ctrl-C raises `Interrupted` (exit 130) saying the same.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from buildkit_farm import docker
from buildkit_farm.causes import engine_hint
from buildkit_farm.docker import DockerFailed, DockerPaths
from buildkit_farm.errors import ApplyError, FarmError, Interrupted
from buildkit_farm.reconcile import buildx
from buildkit_farm.reconcile.names import buildx_node_name, container_name, file_node_name
from buildkit_farm.reconcile.observe import FarmState
from buildkit_farm.reconcile.record import OWNER_MARK, FarmRecord, RecordEntry, read_record
from buildkit_farm.reconcile.steps import Action, Plan, Step, StepKind, StepMode, assert_never

if TYPE_CHECKING:
    from buildkit_farm.farmfile.desired import Desired, NodeSettings

Report = Callable[[Step, float], None]


@dataclass
class _Run:
    plan: Plan
    paths: DockerPaths
    boot: bool = False
    touched: set[str] = field(default_factory=set)  # buildx nodes whose BuildKit is (re)created
    replaced: bytes | None = None  # the instance file before a builder replace removed it
    applied: list[str] = field(default_factory=list)  # the labels of the steps done, in order


def apply_plan(plan: Plan, paths: DockerPaths, *, report: Report | None = None) -> frozenset[str]:
    """Apply the plan's changes in order, then bootstrap. Returns the buildx nodes whose
    BuildKit container was created or recreated (their settings are known from now on)."""
    run = _Run(plan, paths)
    _backup_instance(paths, plan.builder)
    current = "the first step"
    try:
        for step in plan.changes:
            current = _label(step)
            t0 = time.monotonic()
            _HANDLERS[(step.kind, step.action)](run, step)
            run.applied.append(current)
            if report:
                report(step, time.monotonic() - t0)
        current = f'bootstrapping builder "{plan.builder}"'
        _bootstrap(run, report)
    except (KeyboardInterrupt, Interrupted):  # the CLI's SIGINT handler raises Interrupted
        back = _restore_replaced(run)
        raise Interrupted(
            f"interrupted during {current}; {_applied(run)}",
            hint=f"{back}{_backup_note(run)}; rerun `farm up` to finish (`farm plan` shows what is left)",
        ) from None
    except FarmError as err:
        back = _restore_replaced(run)
        if back or run.applied:
            err.hint = f"{err.hint}; {back}{_applied(run)}" if err.hint else f"{back}{_applied(run)}"
        raise
    return frozenset(run.touched)


def _bootstrap(run: _Run, report: Report | None) -> None:
    plan, paths = run.plan, run.paths
    if run.boot:
        t0 = time.monotonic()
        try:
            buildx.buildx_bootstrap(paths, plan.builder)
        except DockerFailed as err:
            raise ApplyError(
                step=f'bootstrapping builder "{plan.builder}"',
                detail=err.detail,
                hint="check the failing node's engine, then rerun `farm up`",
            ) from None
        if report:
            report(
                Step(StepKind.BOOTSTRAP, plan.builder, Action.UPDATE, "every node's BuildKit started"),
                time.monotonic() - t0,
            )


def _applied(run: _Run) -> str:
    if not run.applied:
        return "no step was applied"
    return "applied before: " + ", ".join(run.applied)


def _backup_note(run: _Run) -> str:
    backup = _instance_backup(run.paths, run.plan.builder)
    return (
        f"the builder's instance file as it was before this run is kept in {backup}"
        if backup.is_file()
        else ("the builder did not exist before this run")
    )


def _restore_replaced(run: _Run) -> str:
    """After a replace removed the builder, put its instance file back if nothing took its place.

    Returns what the user must know ("" when there was no replace, or a builder exists)."""
    inst = run.paths.instance_file(run.plan.builder)
    if run.replaced is None or inst.exists():
        return ""
    try:
        _atomic_write(inst, run.replaced)
    except OSError as err:
        return (
            f"the builder was removed to be replaced and could not be put back ({err.strerror or err}): "
            f"copy {_instance_backup(run.paths, run.plan.builder)} to {inst} to restore it; "
        )
    return (
        f"the builder was put back as it was before the replace ({inst}); its BuildKit containers were "
        "removed (their state volumes kept) and start again on the next build or `farm up`; "
    )


def _settings(step: Step) -> NodeSettings:
    assert step.settings is not None, f"the planner gives a {step.kind} step its node's settings"
    return step.settings


def _buildx_node(step: Step) -> str:
    assert step.buildx_node is not None, f"the planner names the buildx node of a {step.kind} step"
    return step.buildx_node


def _where(step: Step) -> str:
    assert step.where is not None, f"the planner says where a {step.kind} step acts"
    return step.where


# ---------------------------------------------------------------------------- contexts
def _description(step: Step) -> str:
    return f"{OWNER_MARK} (node {step.settings.name})" if step.settings else OWNER_MARK


def create_context(run: _Run, step: Step) -> None:
    s = _settings(step)
    tls = s.tls
    claim(run.paths, run.plan.builder)  # first, so a kill right after still knows the context is the farm's
    _note_context(run.paths, run.plan.builder, step.name, add=True)
    _docker(
        step,
        lambda: docker.create_context(
            run.paths,
            step.name,
            description=_description(step),
            host=s.endpoint,
            ca=tls.ca if tls else None,
            cert=tls.cert if tls else None,
            key=tls.key if tls else None,
        ),
    )


def update_context(run: _Run, step: Step) -> None:
    s = _settings(step)
    if any(f == "endpoint" for f, _, _ in step.changes):
        # The node's BuildKit lives on the old engine: remove it there (state volume kept)
        # before the context points elsewhere; a gone engine is no reason to stop.
        _remove_container(run, step.name, buildx_node_name(run.plan.builder, s.name), strict=False)
    tls = s.tls
    _docker(
        step,
        lambda: buildx.context_update(
            run.paths,
            step.name,
            description=_description(step),
            host=s.endpoint or "",
            ca=tls.ca if tls else None,
            cert=tls.cert if tls else None,
            key=tls.key if tls else None,
        ),
    )


def remove_context(run: _Run, step: Step) -> None:
    _docker(step, lambda: docker.remove_context(run.paths, step.name))  # one already gone is fine
    _note_context(run.paths, run.plan.builder, step.name, add=False)


def _note_context(paths: DockerPaths, builder: str, name: str, *, add: bool) -> None:
    record = read_record(paths, builder)
    if record is None:
        return
    names = set(record.contexts) | {name} if add else set(record.contexts) - {name}
    if names != set(record.contexts):
        save_record(paths, FarmRecord(builder=record.builder, nodes=record.nodes, contexts=tuple(sorted(names))))


# ---------------------------------------------------------------------------- builder
def create_builder(run: _Run, step: Step) -> None:
    """Claim the builder for the farm; buildx creates it with its first node."""
    claim(run.paths, run.plan.builder)


def replace_builder(run: _Run, step: Step) -> None:
    claim(run.paths, run.plan.builder)
    inst = run.paths.instance_file(run.plan.builder)
    run.replaced = inst.read_bytes() if inst.is_file() else None  # put back if a later step fails
    _buildx(run, step, lambda: buildx.buildx_rm(run.paths, run.plan.builder, keep_state=True))


def remove_builder(run: _Run, step: Step) -> None:
    _buildx(
        run,
        step,
        lambda: buildx.buildx_rm(run.paths, run.plan.builder, keep_state=step.mode is StepMode.KEEP_STATE),
        restore=False,
    )
    for f in (run.paths.record_file(run.plan.builder), _instance_backup(run.paths, run.plan.builder)):
        f.unlink(missing_ok=True)
    config_dir = run.paths.farm_dir / run.plan.builder.lower()
    if config_dir.is_dir():
        for f in config_dir.iterdir():
            f.unlink()
        config_dir.rmdir()


# ---------------------------------------------------------------------------- nodes
def _join(run: _Run, step: Step) -> None:
    s = _settings(step)
    config_file = _write_buildkitd_config(run.paths, run.plan.builder, _buildx_node(step), s.buildkitd_config)
    exists = run.paths.instance_file(run.plan.builder).exists()
    _buildx(
        run,
        step,
        lambda: buildx.buildx_create(
            run.paths,
            builder=run.plan.builder,
            node=_buildx_node(step),
            endpoint=s.buildx_endpoint,
            driver=run.plan.driver,
            append=exists,
            platforms=s.platforms,
            driver_opts=(*s.driver_opts, *(step.stamp.driver_opts() if step.stamp else ())),
            buildkitd_flags=s.buildkitd_flags,
            buildkitd_config=config_file,
        ),
    )


def create_node(run: _Run, step: Step) -> None:
    _join(run, step)


def update_node(run: _Run, step: Step) -> None:
    match step.mode:
        case StepMode.REJOIN:  # what --append cannot change: leave, then join again
            _buildx(
                run, step, lambda: buildx.buildx_leave(run.paths, builder=run.plan.builder, node=_buildx_node(step))
            )
        case StepMode.APPEND | StepMode.PIN | StepMode.JOIN | StepMode.STAMP | StepMode.NONE:
            pass  # --append --node: a STAMP only rewrites what the node stores, no container is touched
        case (
            StepMode.LEAVE | StepMode.DRAINED | StepMode.START | StepMode.RESTART | StepMode.MOVE | StepMode.KEEP_STATE
        ):
            raise AssertionError(f"no node ~ step runs in mode {step.mode.value!r}")
        case _:
            assert_never(step.mode)
    _join(run, step)


def remove_node(run: _Run, step: Step) -> None:
    _buildx(run, step, lambda: buildx.buildx_leave(run.paths, builder=run.plan.builder, node=_buildx_node(step)))


# ---------------------------------------------------------------------------- BuildKit containers
def create_buildkit(run: _Run, step: Step) -> None:
    run.boot = True
    run.touched.add(_buildx_node(step))


def update_buildkit(run: _Run, step: Step) -> None:
    match step.mode:
        case StepMode.RESTART:  # removed here, started again by the bootstrap: a new container
            _remove_container(run, _where(step), _buildx_node(step), strict=True, step=step)
            run.touched.add(_buildx_node(step))
        case StepMode.MOVE | StepMode.NONE:  # a new container on its (new) engine
            run.touched.add(_buildx_node(step))
        case StepMode.START:  # the same container, started: its recorded settings stay
            pass
        case (
            StepMode.JOIN
            | StepMode.APPEND
            | StepMode.REJOIN
            | StepMode.PIN
            | StepMode.LEAVE
            | StepMode.DRAINED
            | StepMode.STAMP
            | StepMode.KEEP_STATE
        ):
            raise AssertionError(f"no buildkit ~ step runs in mode {step.mode.value!r}")
        case _:
            assert_never(step.mode)
    run.boot = True


def remove_buildkit(run: _Run, step: Step) -> None:
    _remove_container(run, _where(step), _buildx_node(step), strict=True, step=step)


def _remove_container(run: _Run, where: str, buildx_node: str, *, strict: bool, step: Step | None = None) -> None:
    """Remove a node's BuildKit container; its state volume is a named volume and stays."""
    try:
        docker.remove_container(run.paths, where, container_name(buildx_node))  # one already gone is fine
    except DockerFailed as err:
        if strict:
            raise ApplyError(
                step=_label(step) if step else f"removing {container_name(buildx_node)}", detail=err.detail
            ) from None


_HANDLERS: dict[tuple[StepKind, Action], Callable[[_Run, Step], None]] = {
    (StepKind.CONTEXT, Action.CREATE): create_context,
    (StepKind.CONTEXT, Action.UPDATE): update_context,
    (StepKind.CONTEXT, Action.REMOVE): remove_context,
    (StepKind.BUILDER, Action.CREATE): create_builder,
    (StepKind.BUILDER, Action.REPLACE): replace_builder,
    (StepKind.BUILDER, Action.REMOVE): remove_builder,
    (StepKind.NODE, Action.CREATE): create_node,
    (StepKind.NODE, Action.UPDATE): update_node,
    (StepKind.NODE, Action.REMOVE): remove_node,
    (StepKind.BUILDKIT, Action.CREATE): create_buildkit,
    (StepKind.BUILDKIT, Action.UPDATE): update_buildkit,
    (StepKind.BUILDKIT, Action.REMOVE): remove_buildkit,
}


# ---------------------------------------------------------------------------- the record
def claim(paths: DockerPaths, builder: str) -> None:
    """Write the farm's record for a builder before buildx creates it (ownership survives a kill)."""
    if read_record(paths, builder) is None:
        save_record(paths, FarmRecord(builder=builder.lower()))


def save_record(paths: DockerPaths, record: FarmRecord) -> None:
    _atomic_write(paths.record_file(record.builder), record.to_json().encode())


def record_buildkits(paths: DockerPaths, desired: Desired, state: FarmState, touched: frozenset[str]) -> FarmRecord:
    """Note each node's container, the settings it was created with (for the ones this run
    created), and what BuildKit reported; entries for other containers are dropped."""
    old = state.record.nodes if state.record else {}
    nodes: dict[str, RecordEntry] = {}
    for s in desired.nodes:
        bn = buildx_node_name(desired.builder.name, s.name)
        bk = state.buildkits.get(bn)
        prev = old.get(bn)
        if bk is not None and bk.status == "unreachable" and prev is not None:
            nodes[bn] = prev  # a pool node that is down keeps what is known of its container
            continue
        if bk is None or not bk.container_id:
            continue
        if bn in touched:
            settings = s.fingerprint
        elif bk.settings is not None:
            settings = bk.settings  # stamped on the container: whoever made it, this runner knows now
        elif prev is not None and prev.container_id == bk.container_id:
            settings = prev.settings
        else:
            continue
        nodes[bn] = RecordEntry(
            container_id=bk.container_id,
            settings=settings,
            started_at=bk.started_at,
            version=bk.version,
            platforms=bk.platforms,
        )
    record = FarmRecord(
        builder=desired.builder.name.lower(),
        nodes=MappingProxyType(nodes),
        contexts=state.record.contexts if state.record else (),
    )
    if state.record is None or record.to_json() != state.record.to_json():
        save_record(paths, record)
    return record


# ---------------------------------------------------------------------------- plumbing
def _write_buildkitd_config(paths: DockerPaths, builder: str, node: str, text: str | None) -> Path | None:
    if not text:
        return None
    f = paths.farm_dir / builder.lower() / f"{node}.buildkitd.toml"
    _atomic_write(f, text.encode())
    return f


def _instance_backup(paths: DockerPaths, builder: str) -> Path:
    return paths.farm_dir / f"{builder.lower()}.instance.bak"


def _backup_instance(paths: DockerPaths, builder: str) -> None:
    inst = paths.instance_file(builder)
    if inst.is_file():
        _atomic_write(_instance_backup(paths, builder), inst.read_bytes())


def _buildx(run: _Run, step: Step, action: Callable[[], object], *, restore: bool = True) -> None:
    """Run a buildx command that rewrites the instance file; put the file back if it fails."""
    inst = run.paths.instance_file(run.plan.builder)
    before = inst.read_bytes() if inst.is_file() else None
    try:
        action()
    except BaseException as err:
        restored = "the builder's instance file was restored"
        if restore:
            if before is None:
                inst.unlink(missing_ok=True)  # apply_plan puts back a replaced builder's file
                restored = "no half-made builder was left" if run.replaced is None else ""
            else:
                _atomic_write(inst, before)
        else:
            restored = ""
        if isinstance(err, DockerFailed):
            detail = err.detail
            # buildx contacts every node on each change: name the one that did not answer.
            m = re.search(r"failed to initialize builder \S+ \((\S+)\): (.*)", detail)
            cause = None
            if m:
                detail = f'node "{file_node_name(run.plan.builder, m.group(1))}" did not answer: {m.group(2)}'
                cause = engine_hint(m.group(2), None)
            fix = cause or "fix the cause (`farm status`) and rerun `farm up`"
            raise ApplyError(step=_label(step), detail=detail, hint=f"{restored}; {fix}" if restored else fix) from None
        raise


def _docker(step: Step, action: Callable[[], object]) -> None:
    try:
        action()
    except DockerFailed as err:
        raise ApplyError(step=_label(step), detail=err.detail) from None


def _label(step: Step) -> str:
    return f"{step.action.symbol} {step.kind} {step.name}"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
