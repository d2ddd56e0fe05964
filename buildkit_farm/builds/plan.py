"""Stage 2 of `farm build`, plan the run: one frozen value saying everything that will run.

In: the resolved targets (stage 1) and the nodes as scheduling sees them (`NodeView`s: from
the file alone for `--dry-run` and the early start, else as observed). Out: a `RunPlan`:
per target which node builds each platform, its builds (each one bake target, written once),
what is checked and verified; and the bakes that run them with their exact command lines.
Pure: no process, no file. `--dry-run` prints this value (`render`); the run (stage 3)
executes this same value, so what is printed is what runs.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_farm.builds.command import (
    Invocation,
    bake_allow,
    bake_command,
    bake_definition,
    inspect_command,
    invocations,
    platform_slug,
    publish_command,
    redact,
)
from buildkit_farm.builds.resolve import BuildOptions, ResolvedTarget
from buildkit_farm.builds.schedule import Assignment, NodeView, schedule

if TYPE_CHECKING:
    from buildkit_farm.farmfile.desired import NodeSettings


@dataclass(frozen=True)
class VerifyJob:
    """`--verify-run`: one variant run on the node that built it, through that node's context."""

    platform: str
    node: str
    context: str
    emulated: bool


@dataclass(frozen=True)
class TargetPlan:
    """One target's part of the run."""

    target: ResolvedTarget
    assignments: tuple[Assignment, ...]  # which node builds each platform
    builds: tuple[Invocation, ...]  # () for a target made only of sources
    verify: tuple[VerifyJob, ...]  # () without --verify-run

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def alone(self) -> bool:
        """Built in bakes of its own: an emulated platform would make buildx re-match every
        platform of a shared bake (seen on the lab: a pinned two-node build landed on one node)."""
        return bool(self.builds) and any(a.emulated for a in self.assignments)


@dataclass(frozen=True)
class Bake:
    """One `docker buildx bake` process: the builds it holds, as (farm target, build)."""

    builds: tuple[tuple[str, Invocation], ...]

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for name, _ in self.builds))

    def definition(self, *, shown: bool = False) -> dict[str, object]:
        """The bake definition (JSON) it is given; `shown`: secrets reduced to their ids."""
        return bake_definition(self.builds, shown=shown)


@dataclass(frozen=True)
class RunPlan:
    """Everything `farm build` will run, in order: build (bakes), check, verify, publish."""

    builder: str
    docker_config: str | None
    progress: str
    verify_cmd: str | None
    atomic: bool
    targets: tuple[TargetPlan, ...]
    push: bool = True  # --no-push: built and checked on every node; no registry is written
    # buildx >= 0.20 wants `--allow fs.*` for the generated definition's paths (outside its folder)
    fs_allow: bool = False

    @property
    def schedule(self) -> dict[str, tuple[Assignment, ...]]:
        return {t.name: t.assignments for t in self.targets}

    @property
    def bakes(self) -> tuple[Bake, ...]:
        """The bakes that run together: one for every target it can hold, one per build of the others."""
        shared = tuple((t.name, b) for t in self.targets if not t.alone for b in t.builds)
        return ((Bake(shared),) if shared else ()) + self.alone(t.name for t in self.targets if t.alone)

    def alone(self, names: Iterable[str]) -> tuple[Bake, ...]:
        """One bake per build of the named targets (after a shared bake stopped at another's failure)."""
        wanted = set(names)
        return tuple(Bake(((t.name, b),)) for t in self.targets if t.name in wanted for b in t.builds)

    def command(self, bake: Bake, definition: Path, metadata: Path, *, program: str | None = None) -> list[str]:
        """The exact `docker buildx bake` argv of one bake (`program=None`: the docker binary on PATH)."""
        return bake_command(
            definition,
            builder=self.builder,
            metadata_file=metadata,
            progress=self.progress,
            docker_config=self.docker_config,
            program=program,
            allow=bake_allow(bake.definition()) if self.fs_allow else (),
        )


def make_plan(
    targets: Sequence[ResolvedTarget],
    nodes: Sequence[NodeView],
    options: BuildOptions,
    *,
    builder: str,
    docker_config: str | None,
    atomic: bool = False,
    fs_allow: bool = False,
) -> RunPlan:
    """The run plan (pure): every platform scheduled on its node, every build and check written out.

    A platform pinned to a node that is down raises BuildError; one pinned nowhere and not
    allowed emulation raises UsageError (see `schedule`).
    """
    contexts = {n.name: n.context for n in nodes}
    plans = []
    for target in targets:
        assignments = schedule(target.platforms, nodes, target=target.name, allow_emulation=target.allow_emulation)
        verify = tuple(VerifyJob(a.platform, a.node, contexts[a.node], a.emulated) for a in assignments)
        builds = invocations(target, assignments, push=options.push)
        plans.append(TargetPlan(target, assignments, builds, verify if options.verify_run and builds else ()))
    return RunPlan(
        builder, docker_config, options.progress, options.verify_cmd, atomic, tuple(plans), options.push, fs_allow
    )


def file_nodes(nodes: Sequence[NodeSettings]) -> tuple[NodeView, ...]:
    """The nodes as the farm file alone says (every one up, its pins): for `--dry-run` and the early start."""
    return tuple(NodeView(s.name, s.context, True, tuple(s.platforms)) for s in nodes)


# --------------------------------------------------------------------------- --dry-run


def render(plan: RunPlan) -> list[str]:
    """The run plan as `--dry-run` prints it: the bakes with their definitions, then each target's
    checks, verify runs and tag moves, as the commands that run (secrets reduced to their ids)."""
    lines = ["# farm build --dry-run: the run plan; nothing ran. Pins from the farm file (the farm was not asked)."]
    for t in plan.targets:
        where = ", ".join(f"{a.platform} on {a.node}" + (" (emulated)" if a.emulated else "") for a in t.assignments)
        lines.append(f"# target {t.name}: {where or 'nothing to build'}" + _sources(t.target))
    for number, bake in enumerate(plan.bakes, 1):
        pushed = "pushed by digest" if plan.push else "not pushed (--no-push)"
        lines.append(f"# build {number} of {len(plan.bakes)}: one bake of {', '.join(bake.targets)}, {pushed}")
        argv = plan.command(
            bake, Path(f"<run>/bake-{number}.json"), Path(f"<run>/metadata-{number}.json"), program="docker"
        )
        lines.append(shlex.join(argv))
        lines.append(f"# <run>/bake-{number}.json:")
        lines += json.dumps(bake.definition(shown=True), indent=2).splitlines()
    for t in plan.targets if plan.push else ():
        lines.append(f"# target {t.name}: check, verify, publish")
        lines += target_lines(t, plan)
    if not plan.push:
        lines.append("# --no-push: nothing is written to any registry (no variant, no tag, no cache export)")
    elif plan.targets:
        from buildkit_farm.registry.distribution import SWITCH_ENV

        lines.append(
            "# a registry that answers without credentials gets the reads and the tag moves above as "
            f"requests to its HTTP API instead (the same effect, no process each); {SWITCH_ENV}=off runs them as shown"
        )
    return lines


def _sources(target: ResolvedTarget) -> str:
    return f"; stitches {', '.join(target.sources)}" if target.sources else ""


def target_lines(t: TargetPlan, plan: RunPlan) -> list[str]:
    """The docker commands after a target's build, in order: read what was pushed (and every
    source), run each variant, move the variant tags, then the tags, and read them back."""
    target, builder, docker_config = t.target, plan.builder, plan.docker_config
    digests = [f"{target.repo}@<digest of {inv.label}>" for inv in t.builds]
    lines = [
        shlex.join(inspect_command(ref, builder=builder, docker_config=docker_config))
        for ref in list(target.sources) + digests
    ]
    for job in t.verify:
        lines += [redact(argv) for argv in _verify_argvs(job, f"{target.repo}@<digest of {job.platform}>", plan)]
    if target.variant_tags:
        for p in target.platforms:
            variant = f"{target.repo}@<digest of {p}>"
            tag = f"{target.repo}:{platform_slug(p)}"
            lines.append(shlex.join(publish_command([tag], [variant], builder=builder, docker_config=docker_config)))
    lines.append(
        shlex.join(
            publish_command(target.tags, digests + list(target.sources), builder=builder, docker_config=docker_config)
        )
    )
    lines += [shlex.join(inspect_command(tag, builder=builder, docker_config=docker_config)) for tag in target.tags]
    return lines


def _verify_argvs(job: VerifyJob, image: str, plan: RunPlan) -> list[list[str]]:
    from buildkit_farm import docker

    paths = docker.DockerPaths.resolve(plan.docker_config)
    return [
        docker.pull_variant_argv(paths, job.context, image, job.platform, program="docker"),
        docker.run_variant_argv(paths, job.context, image, job.platform, plan.verify_cmd, program="docker"),
    ]
