"""Running the builds (talks to Docker): `docker buildx build` with live progress, push by digest.

No tag of the user's moves here: every build pushes by digest only, and its digest is read
from buildx's metadata file. A failure names the target, the platform, its node and the
failing step's last lines.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from buildkit_farm.builds.command import Invocation
from buildkit_farm.builds.progress import ProgressTracker
from buildkit_farm.builds.schedule import Assignment
from buildkit_farm.errors import BuildError

Echo = Callable[[str], None]


def stderr_echo(line: str) -> None:
    sys.stderr.write(line if line.endswith("\n") else line + "\n")
    sys.stderr.flush()


def digest_from_metadata(path: Path) -> str:
    """The pushed digest buildx wrote into --metadata-file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise BuildError(f"buildx wrote no readable metadata file {path}: {err}") from None
    digest = data.get("containerimage.digest")
    if not digest:
        raise BuildError(
            f"buildx metadata file {path} has no containerimage.digest",
            hint="is the BuildKit on the nodes recent enough?",
        )
    return digest


def run_invocation(
    inv: Invocation,
    *,
    target: str,
    assignments: Sequence[Assignment],
    docker_config: str | None,
    echo: Echo = stderr_echo,
    prefix: str = "",
) -> tuple[str, dict[str, float], float]:
    """Run one buildx build with live progress; return (digest, per-platform seconds, seconds).

    A failure raises BuildError naming the target, the platform, its node and the failing
    step's last lines.
    """
    from python_on_whales.exceptions import DockerException

    from buildkit_farm import docker as door

    docker = door.client(door.DockerPaths.resolve(docker_config))
    start = time.monotonic()
    tracker = ProgressTracker(inv.platforms, start=start)
    kwargs = dict(inv.kwargs)
    try:
        if kwargs.get("progress") == "tty":
            # buildx draws its own terminal UI; nothing to capture.
            docker.buildx.build(**kwargs)
        else:
            for line in docker.buildx.build(**kwargs, stream_logs=True):  # type: ignore[union-attr]
                tracker.feed(line, time.monotonic())
                echo(prefix + line.rstrip("\n"))
    except DockerException as err:
        if err.stderr and not tracker.tail:
            for line in err.stderr.splitlines():
                tracker.feed(line, time.monotonic())
        raise build_failure(target, inv, tracker, assignments, err.return_code) from None
    end = time.monotonic()
    digest = digest_from_metadata(Path(str(kwargs["metadata_file"])))
    return digest, tracker.durations(end), round(end - start, 2)


def build_failure(
    target: str, inv: Invocation, tracker: ProgressTracker, assignments: Sequence[Assignment], code: int
) -> BuildError:
    platform = tracker.failed_platform()
    where = {a.platform: a for a in assignments}
    if platform and platform in where:
        a = where[platform]
        place = f'{platform} on node "{a.node}"' + (" (emulated)" if a.emulated else "")
    else:
        place = ", ".join(f'{a.platform} on "{a.node}"' for a in assignments if a.platform in inv.platforms)
    lines = tracker.failing_lines()
    text = "\n".join(f"  | {l}" for l in lines) if lines else "  (no log captured; rerun with --progress plain)"
    hint = "nothing was tagged; the tags still point where they pointed before"
    joined = "\n".join(lines)
    if "connection refused" in joined or "no such host" in joined or "dial tcp" in joined:
        hint = "the registry did not answer; start it or fix the tag's host:port. " + hint
    return BuildError(f'target "{target}": build failed for {place} (buildx exit {code}):\n{text}', hint=hint)


@contextmanager
def registry_trust():
    """Let the buildx client trust $FARM_REGISTRY_CA while it merges per-node manifests
    (it ignores the buildkitd config's CA; see LAB.md). python-on-whales' build takes no
    env, so the variable is set for the call's duration."""
    from buildkit_farm.registry.access import cert_env

    with cert_env(None) as extra:
        saved = {k: os.environ.get(k) for k in extra}
        os.environ.update(extra)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def run_all(
    plan: Sequence[Invocation], *, target: str, assignments, docker_config, echo: Echo, name: str = ""
) -> list[tuple[str, dict[str, float], float]]:
    """Run a target's invocations at once; all must succeed.

    Log lines are prefixed `[name/label] ` when several run (`name`: the target's, when the
    run has several targets; `label`: the platform of a per-platform Dockerfile).
    """
    if not plan:  # a target made only of sources: nothing to build
        return []

    def prefix(inv: Invocation) -> str:
        parts = [p for p in (name, inv.label if len(plan) > 1 else "") if p]
        return f"[{'/'.join(parts)}] " if parts else ""

    if len(plan) == 1:
        return [
            run_invocation(
                plan[0],
                target=target,
                assignments=assignments,
                docker_config=docker_config,
                echo=echo,
                prefix=prefix(plan[0]),
            )
        ]

    def one(inv: Invocation):
        return run_invocation(
            inv, target=target, assignments=assignments, docker_config=docker_config, echo=echo, prefix=prefix(inv)
        )

    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        futures = [pool.submit(one, inv) for inv in plan]
        errors = [f.exception() for f in futures]
    failures = [e for e in errors if e is not None]
    if failures:
        if len(failures) == 1:
            raise failures[0]
        raise BuildError("\n".join(str(e) for e in failures), hint=getattr(failures[0], "hint", None))
    return [f.result() for f in futures]


class Cancel:
    """Stops a running bake from another thread (`set`), or before it starts."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def attach(self, proc: subprocess.Popen[str]) -> None:
        with self._lock:
            self._proc = proc
            if self._event.is_set():
                proc.terminate()

    def set(self) -> None:
        with self._lock:
            self._event.set()
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()

    def is_set(self) -> bool:
        return self._event.is_set()


@dataclass
class BakeItem:
    """One bake target of the run: which farm target and invocation it builds, and its outcome."""

    name: str  # the bake target's name
    target: str  # the farm target's name
    inv: Invocation
    assignments: Sequence[Assignment]
    tracker: ProgressTracker
    prefix: str = ""  # what its log lines start with, e.g. "[app] " or "[app/linux/arm64] "
    result: tuple[str, dict[str, float], float] | None = None  # (digest, per-platform seconds, seconds)
    error: BuildError | None = None  # it failed itself (not merely cancelled by another's failure)


_BAKE_VERTEX = re.compile(r"^(#\d+) \[([A-Za-z0-9_-]+)(?: (.*?))?\](.*)$")


def run_bake(
    items: Sequence[BakeItem],
    *,
    builder: str,
    progress: str,
    docker_config: str | None,
    echo: Echo = stderr_echo,
    cancel: Cancel | None = None,
) -> bool:
    """Build every item in one `docker buildx bake` (one session, one context upload per
    context, the nodes reached once): True when all built, each item's `result` set.

    bake stops every build at the first failure, so on False only the items that failed
    themselves carry an `error`; the others were cancelled and must be built again. Each
    log line is given its farm target's prefix (`[target] #12 [linux/arm64 2/3] RUN …`).
    """
    from buildkit_farm import buildx_version
    from buildkit_farm.builds.command import bake_allow, bake_command, bake_definition

    by_name = {item.name: item for item in items}
    vertex_item: dict[str, BakeItem] = {}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="farm-bake-") as tmp:
        definition, metadata = Path(tmp) / "bake.json", Path(tmp) / "metadata.json"
        spec = bake_definition([(i.target, i.inv) for i in items])
        definition.write_text(json.dumps(spec, indent=2))
        argv = bake_command(
            definition,
            builder=builder,
            metadata_file=metadata,
            progress=progress,
            docker_config=docker_config,
            program=None,
            allow=bake_allow(spec) if buildx_version.require(docker_config).bake_needs_allow else (),
        )
        tty = progress == "tty"
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=None if tty else subprocess.DEVNULL,
            stderr=None if tty else subprocess.PIPE,
            text=True,
            errors="replace",
        )
        if cancel is not None:
            cancel.attach(proc)
        for line in proc.stderr or ():
            line = line.rstrip("\n")
            now = time.monotonic()
            item, shown = _route(line, by_name, vertex_item, only=items[0] if len(items) == 1 else None)
            if item is None:
                echo(line)
                continue
            item.tracker.feed(shown, now)
            echo(item.prefix + shown)
        code = proc.wait()
        end = time.monotonic()
        if code == 0:
            data = json.loads(metadata.read_text())
            for item in items:
                digest = (data.get(item.name) or {}).get("containerimage.digest")
                if not digest:
                    raise BuildError(f"buildx bake metadata has no digest for {item.name}")
                item.result = (digest, item.tracker.durations(end), round(end - start, 2))
            return True
    for item in items:
        if item.tracker.failed_vertex is not None:
            item.error = build_failure(item.target, item.inv, item.tracker, item.assignments, code)
    return False


def _route(
    line: str, by_name: Mapping[str, BakeItem], vertex_item: dict[str, BakeItem], *, only: BakeItem | None
) -> tuple[BakeItem | None, str]:
    """Which item a bake progress line is about, and the line as that item's own build would print it."""
    match = _BAKE_VERTEX.match(line)
    if match and match.group(2) in by_name:
        number, name, rest, tail = match.groups()
        vertex_item[number] = by_name[name]
        return by_name[name], f"{number} [{rest}]{tail}" if rest else f"{number} [internal]{tail}"
    number = line.split(" ", 1)[0] if line.startswith("#") else None
    if number and number in vertex_item:
        return vertex_item[number], line
    return only, line
