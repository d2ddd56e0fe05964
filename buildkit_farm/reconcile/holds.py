"""What runners on different machines agree on, held on the nodes themselves.

- **The node lock.** Before `farm up` or `farm down` restarts, replaces or removes a node's
  BuildKit container (or bootstraps a missing one), it creates a container that is never
  started, `buildkit-farm-lock_<buildx node>`, beside it on the node's engine. Container
  names are unique per engine, so exactly one runner's create succeeds; the others wait.
  Its labels say who holds it (user@host, pid, Docker config), since when, and when it is
  stale: a runner killed while holding it (SIGKILL leaves it behind) is taken over once
  `expires` has passed (`--lock-ttl`, default 600 s), by removing that very container (by
  id, so a fresh lock someone else just took is never removed).
- **Running builds.** `buildctl debug histories` inside the BuildKit container lists
  BuildKit's build records; one without a completion time is still running. That is
  BuildKit's own answer, the same whichever buildx (0.13 or 0.29) started the build.
- **Drain.** `buildkit-farm-drain_<buildx node>`, another never-started container whose
  labels say who drained the node, when and why; `observe` reads it in the same inspect
  as the BuildKit container, so every runner sees it at no extra cost.

This module changes nothing but these marker containers.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_farm import docker
from buildkit_farm.docker import DockerPaths
from buildkit_farm.errors import ApplyError, BuildsRunning, LockTimeout
from buildkit_farm.reconcile.names import buildx_node_name, container_name, file_node_name, marker_name
from buildkit_farm.reconcile.observe import DRAIN_LABEL, FarmState, ObservedBuildkit
from buildkit_farm.reconcile.readouts import parse_running_builds
from buildkit_farm.reconcile.stamp import utc_now
from buildkit_farm.reconcile.steps import Action, Plan, Step, StepMode

if TYPE_CHECKING:
    from buildkit_farm.farmfile.desired import Desired, NodeSettings

LOCK_LABEL = "org.buildkit-farm.lock"
DEFAULT_TTL = 600.0  # seconds after which a lock nobody released is stale
DEFAULT_WAIT = 300.0  # seconds `farm up`/`farm down` wait for running builds
DEFAULT_IMAGE = "moby/buildkit:buildx-stable-1"  # what buildx runs when no image is set
Echo = Callable[[str], None]


@dataclass(frozen=True)
class NodeRef:
    """A node whose BuildKit container a run is about to touch, and where it lives."""

    name: str  # the file's node name, for people
    buildx_node: str
    where: str  # context or host of its engine
    image: str  # an image the engine has (markers are made of it, never run)


def holder(paths: DockerPaths) -> str:
    """Who this run is, as another runner reads it."""
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()} (docker config {paths.docker_config})"


def machine() -> str:
    """This machine as it is booted now: a lock whose holder ran here and is gone is stale at once."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


def _gone(where: str, pid: str) -> bool:
    """Whether a lock's holder ran on this machine (same host name and boot) and has exited."""
    if where != machine() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# ---------------------------------------------------------------------------- the node lock
@contextmanager
def locked(
    paths: DockerPaths, refs: Sequence[NodeRef], *, ttl: float = DEFAULT_TTL, timeout: float, echo: Echo | None
) -> Iterator[None]:
    """Hold every node's lock (in name order, so two runs never wait on each other)."""
    taken: list[tuple[NodeRef, str]] = []
    try:
        for ref in sorted(refs, key=lambda r: r.buildx_node):
            cid = _take(paths, ref, ttl=ttl, deadline=time.monotonic() + timeout, timeout=timeout, echo=echo)
            if cid:
                taken.append((ref, cid))
        yield
    finally:
        for ref, cid in taken:
            docker.attempt(paths, ref.where, ["container", "rm", "--force", cid])


def _take(paths: DockerPaths, ref: NodeRef, *, ttl: float, deadline: float, timeout: float, echo: Echo | None) -> str:
    """Create the lock container; its id, or "" when the engine lacks the image (nothing there to guard)."""
    name = marker_name("lock", ref.buildx_node)
    told = ""
    while True:
        expires = int(time.time() + ttl)
        labels = {
            "by": holder(paths),
            "at": utc_now(),
            "expires": str(expires),
            "machine": machine(),
            "pid": str(os.getpid()),
        }
        args = ["container", "create", "--name", name]
        for k, v in labels.items():
            args += ["--label", f"{LOCK_LABEL}.{k}={v}"]
        got = docker.attempt(paths, ref.where, [*args, ref.image])
        if got.returncode == 0:
            return got.stdout.strip()
        if "no such image" in got.stderr.lower():
            return ""  # no BuildKit image on that engine yet: no container to guard, buildx pulls it
        if "Conflict" not in got.stderr and "already in use" not in got.stderr:
            raise ApplyError(step=f'locking node "{ref.name}"', detail=got.message)
        held = _lock_labels(paths, ref, name)
        if held is None:
            continue  # released meanwhile
        cid, by, at, stale_at, where, pid = held
        if stale_at <= time.time() or _gone(where, pid):
            docker.attempt(paths, ref.where, ["container", "rm", "--force", cid])
            if echo:
                echo(f"{ref.name}: took over a stale lock of {by} (taken {at}, stale since {_when(stale_at)})")
            continue
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f'node "{ref.name}" is locked by {by} since {at}; still held after {timeout:g}s',
                hint=f"wait for that run to finish and rerun; a lock nobody releases is stale at {_when(stale_at)} "
                "and then taken over",
            )
        if echo and told != cid:
            echo(f"{ref.name}: waiting for the lock held by {by} since {at} (stale at {_when(stale_at)})")
            told = cid
        time.sleep(1.0)


def _lock_labels(paths: DockerPaths, ref: NodeRef, name: str) -> tuple[str, str, str, float, str, str] | None:
    keys = ("by", "at", "expires", "machine", "pid")
    fields = ["{{.Id}}", *("{{index .Config.Labels " + f'"{LOCK_LABEL}.{k}"' + "}}" for k in keys)]
    fmt = "\t".join(fields)
    got = docker.read(paths, ref.where, ["container", "inspect", "--format", fmt, name])
    if got.returncode != 0:
        return None
    cid, by, at, expires, where, pid = (got.stdout.strip().split("\t") + [""] * 6)[:6]
    try:
        stale_at = float(expires)
    except ValueError:
        stale_at = 0.0  # a lock without an expiry is not one farm wrote: stale
    return cid, by or "(unknown)", at or "(unknown time)", stale_at, where, pid


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# ---------------------------------------------------------------------------- running builds
def running_builds(paths: DockerPaths, ref: NodeRef) -> tuple[str, ...]:
    """The builds running on a node's BuildKit now (none when its container is not running)."""
    got = docker.read(
        paths,
        ref.where,
        ["exec", container_name(ref.buildx_node), "buildctl", "debug", "histories", "--format", "{{json .}}"],
    )
    return parse_running_builds(got.stdout) if got.returncode == 0 else ()


def wait_idle(paths: DockerPaths, refs: Sequence[NodeRef], *, timeout: float, echo: Echo | None) -> None:
    """Wait until no build runs on these nodes; past `timeout`, `BuildsRunning` naming them."""
    deadline = time.monotonic() + timeout
    shown: dict[str, int] = {}
    while True:
        busy = {ref.name: b for ref in refs if (b := running_builds(paths, ref))}
        if not busy:
            return
        if time.monotonic() >= deadline:
            named = "; ".join(f'node "{n}": {", ".join(b)}' for n, b in busy.items())
            raise BuildsRunning(
                f"builds still run after {timeout:g}s, nothing was changed: {named}",
                hint="rerun when they are done, give them longer (--wait-timeout SECONDS), or drain the node first "
                "(`farm drain NODE`) so no new build starts there",
            )
        for name, builds in busy.items():
            if echo and shown.get(name) != len(builds):
                echo(f"{name}: waiting for {len(builds)} running build{'s' if len(builds) != 1 else ''}")
                shown[name] = len(builds)
        time.sleep(2.0)


# ---------------------------------------------------------------------------- drain
def drain(paths: DockerPaths, ref: NodeRef, *, reason: str = "") -> bool:
    """Mark the node drained; False when it already was."""
    labels = {"by": holder(paths), "at": utc_now(), "reason": reason}
    args = ["container", "create", "--name", marker_name("drain", ref.buildx_node)]
    for k, v in labels.items():
        args += ["--label", f"{DRAIN_LABEL}.{k}={v}"]
    got = docker.attempt(paths, ref.where, [*args, ref.image])
    if got.returncode == 0:
        return True
    if "Conflict" in got.stderr or "already in use" in got.stderr:
        return False
    raise ApplyError(step=f'draining node "{ref.name}"', detail=got.message)


def undrain(paths: DockerPaths, ref: NodeRef) -> bool:
    """Lift the drain; False when the node was not drained."""
    got = docker.attempt(paths, ref.where, ["container", "rm", marker_name("drain", ref.buildx_node)])
    if got.returncode == 0:
        return True
    if "No such container" in got.stderr or "no such container" in got.stderr.lower():
        return False
    raise ApplyError(step=f'undraining node "{ref.name}"', detail=got.message)


# ---------------------------------------------------------------------------- which nodes a plan touches
def guarded(desired: Desired, state: FarmState, plan: Plan) -> tuple[list[NodeRef], list[NodeRef]]:
    """(nodes to lock, nodes to wait on): every node whose BuildKit container the plan
    creates, starts, restarts, moves or removes; those it restarts, moves or removes (or
    all, when the builder is replaced or removed) must have no build running first."""
    bname = desired.builder.name
    by_node = {buildx_node_name(bname, s.name): s for s in desired.nodes}
    whole = any(st.kind == "builder" and st.action in (Action.REPLACE, Action.REMOVE) for st in plan.steps)
    lock: list[NodeRef] = []
    wait: list[NodeRef] = []
    for bn, bk in state.buildkits.items():
        steps = [st for st in plan.changes if st.kind == "buildkit" and st.buildx_node == bn]
        if bk.status == "unreachable" or not (steps or (whole and bk.container_id)):
            continue
        ref = node_ref(bname, bk, by_node.get(bn))
        lock.append(ref)
        if bk.status == "running" and (whole or any(_stops(st) for st in steps)):
            wait.append(ref)
    return lock, wait


def node_ref(builder: str, bk: ObservedBuildkit, s: NodeSettings | None) -> NodeRef:
    """Where to reach a node's engine for its markers, and an image to make them of."""
    image = bk.image_id or (dict(s.driver_opts).get("image") if s else None) or DEFAULT_IMAGE
    # Through the endpoint where it can: `farm down` removes the context before the lock is
    # released (a tcp:// one with its TLS files: `paths` from `observe` carries them).
    where = s.endpoint if s is not None and s.endpoint else bk.context
    return NodeRef(name=file_node_name(builder, bk.node), buildx_node=bk.node, where=where, image=image)


def _stops(step: Step) -> bool:
    """Whether a BuildKit step stops a running container (a build on it would fail)."""
    return step.mode in (StepMode.RESTART, StepMode.MOVE) or step.action is Action.REMOVE
