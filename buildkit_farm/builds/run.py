"""Stage 3 of `farm build`, run: the run plan's bakes, with live progress, pushing by digest.

In: the `RunPlan` (stage 2). Out: per target what each of its builds pushed (digest and
per-platform seconds) or its error. The bakes start through the process door
(`docker.start_bake`), with exactly the command lines and definitions the plan holds. No tag
of the user's moves here: every build pushes by digest only, and its digest is read from
buildx's metadata file. A failure names the target, the platform, its node and the failing
step's last lines. It may not read the farm file, nor touch a tag.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_farm import docker
from buildkit_farm.builds.command import Invocation
from buildkit_farm.builds.plan import Bake, RunPlan
from buildkit_farm.builds.progress import ProgressTracker
from buildkit_farm.builds.schedule import Assignment
from buildkit_farm.causes import transient_push
from buildkit_farm.errors import BuildError, FarmError

if TYPE_CHECKING:
    from buildkit_farm.farmfile.desired import Desired

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


class Cancel:
    """Stops the running bakes from another thread (`set`), or any before they start."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._procs: list[docker.BakeProcess] = []
        self._lock = threading.Lock()

    def attach(self, proc: docker.BakeProcess) -> None:
        with self._lock:
            self._procs.append(proc)
            if self._event.is_set():
                proc.stop()

    def set(self) -> None:
        with self._lock:
            self._event.set()
            for proc in self._procs:
                proc.stop()

    def is_set(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class Pushed:
    """One build's outcome: the platforms it built, the digest it pushed, each platform's seconds."""

    platforms: tuple[str, ...]
    digest: str
    durations: Mapping[str, float]


Results = list[Pushed]


# Seconds before pushing again: a cancelled push of the same image may still be winding down
# in BuildKit, and the two would share one push status again (see `causes.transient_push`).
PUSH_SETTLE = 2.0


def run_builds(
    plan: RunPlan, *, echo: Echo = stderr_echo, cancel: Cancel | None = None
) -> dict[str, Results | FarmError]:
    """Every build of the plan at once, pushing by digest: per target its results, or its error.

    The plan's bakes run side by side: one for every target it can hold (one session: the
    nodes are reached and each context sent once), one per build of a target with an
    emulated platform. After a failed shared bake, every target that did not fail itself is
    built again, each build in a bake of its own: bake stops all builds at the first
    failure, so a failing target never costs another its build. A target whose push failed
    for a passing reason (`causes.transient_push`) is built once more the same way.
    """
    outcomes: dict[str, Results | FarmError] = {t.name: [] for t in plan.targets}
    bakes = plan.bakes
    if not bakes:
        return outcomes
    _announce(plan, echo)
    with ThreadPoolExecutor(max_workers=len(bakes)) as pool:
        futures = [pool.submit(run_bake, bake, plan, echo=echo, cancel=cancel) for bake in bakes]
        done = [f.result() for f in futures]
    for result in done:
        _merge(outcomes, result)
    if cancel is not None and cancel.is_set():
        return {t.name: BuildError("stopped: the farm did not check out") for t in plan.targets}
    again = [name for name, value in outcomes.items() if value is None]
    if again:
        echo(f"farm: bake stopped every build at the first failure; building {', '.join(again)} again, each on its own")
        _run_alone(plan, again, outcomes, echo)
    flaky = [
        name for name, value in outcomes.items() if isinstance(value, BuildError) and transient_push(value.message)
    ]
    if flaky:
        echo(
            f"farm: the push of {', '.join(flaky)} failed for a reason that passes (the registry's 5xx or 429, "
            "a cut connection, a digest gone wrong on the way); pushing again once, each on its own "
            "(its build is cached)"
        )
        time.sleep(PUSH_SETTLE)
        _run_alone(plan, flaky, outcomes, echo)
    return outcomes


def _run_alone(plan: RunPlan, names: Sequence[str], outcomes: dict, echo: Echo) -> None:
    """Build these targets again, each build in a bake of its own; their outcomes replace the old."""
    for name in names:
        outcomes[name] = []
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        retried = [pool.submit(run_bake, bake, plan, echo=echo) for bake in plan.alone(names)]
        for future in retried:
            _merge(outcomes, future.result(), cancelled_is_error=True)


def _announce(plan: RunPlan, echo: Echo) -> None:
    """What runs: the bakes, and each build with the node of each of its platforms."""
    bakes = plan.bakes
    echo(
        f"farm: building {sum(len(b.builds) for b in bakes)} image(s) of "
        f"{len(plan.targets)} target(s) at once ({len(bakes)} buildx bake(s))"
    )
    for t in plan.targets:
        for inv in t.builds:
            where = ", ".join(f"{a.platform} on {a.node}" for a in t.assignments if a.platform in inv.platforms)
            echo(f'farm: target "{t.name}": bake target {inv.key}: {where}')


def _merge(
    outcomes: dict, result: Mapping[str, Results | FarmError | None], *, cancelled_is_error: bool = False
) -> None:
    """Fold one bake's outcome into the run's: an error wins, a cancelled build (None) is to be built again."""
    for name, value in result.items():
        current = outcomes.get(name)
        if isinstance(current, FarmError):
            continue
        if isinstance(value, FarmError):
            outcomes[name] = value
        elif value is None:
            outcomes[name] = BuildError("stopped by another build's failure") if cancelled_is_error else None
        elif current is not None:
            outcomes[name] = current + value


@dataclass
class BakeItem:
    """One bake target of a bake: which farm target and build it is, and its outcome."""

    name: str  # the bake target's name
    target: str  # the farm target's name
    inv: Invocation
    assignments: Sequence[Assignment]
    tracker: ProgressTracker
    prefix: str = ""  # what its log lines start with, e.g. "[app] " or "[app/linux/arm64] "
    result: tuple[str, dict[str, float], float] | None = None  # (digest, per-platform seconds, seconds)
    error: BuildError | None = field(default=None)  # it failed itself (not merely cancelled by another's failure)


_BAKE_VERTEX = re.compile(r"^(#\d+) \[([A-Za-z0-9_-]+)(?: (.*?))?\](.*)$")


def run_bake(
    bake: Bake, plan: RunPlan, *, echo: Echo = stderr_echo, cancel: Cancel | None = None
) -> dict[str, Results | FarmError | None]:
    """Run one bake of the plan: per farm target its results, its own error, or None (cancelled
    by another's failure: to build again). Each log line is given its farm target's prefix
    (`[target] #12 [linux/arm64 2/3] RUN …`)."""
    items = _items(bake, plan)
    ok, code = _stream(items, bake, plan, echo=echo, cancel=cancel)
    out: dict[str, Results | FarmError | None] = {name: [] for name in bake.targets}
    for item in items:
        mine = out[item.target]
        if ok and item.result is not None and isinstance(mine, list):
            digest, durations, _ = item.result
            mine.append(Pushed(item.inv.platforms, digest, durations))
        elif item.tracker.failed_vertex is not None and not isinstance(mine, FarmError):
            out[item.target] = build_failure(item.target, item.inv, item.tracker, item.assignments, code)
    if not ok and len(bake.targets) == 1 and not isinstance(out[items[0].target], FarmError):
        # a bake of one target failed for it alone, even before any step ran
        first = items[0]
        out[first.target] = build_failure(first.target, first.inv, first.tracker, first.assignments, code)
    if not ok:
        for name, value in out.items():
            if not isinstance(value, FarmError):
                out[name] = None
    return out


def _items(bake: Bake, plan: RunPlan) -> list[BakeItem]:
    many = len(plan.targets) > 1
    builds_of = {t.name: t.builds for t in plan.targets}
    items = []
    for target, inv in bake.builds:
        parts = [p for p in (target if many else "", inv.label if len(builds_of[target]) > 1 else "") if p]
        items.append(
            BakeItem(
                name=inv.key,
                target=target,
                inv=inv,
                assignments=plan.schedule[target],
                tracker=ProgressTracker(inv.platforms, start=time.monotonic()),
                prefix=f"[{'/'.join(parts)}] " if parts else "",
            )
        )
    return items


def _stream(
    items: Sequence[BakeItem], bake: Bake, plan: RunPlan, *, echo: Echo, cancel: Cancel | None
) -> tuple[bool, int]:
    """Run the bake, routing its progress to its items; (all built, exit code). On success
    each item's `result` is set from the metadata file."""
    by_name = {item.name: item for item in items}
    vertex_item: dict[str, BakeItem] = {}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="farm-bake-") as tmp:
        definition, metadata = Path(tmp) / "bake.json", Path(tmp) / "metadata.json"
        definition.write_text(json.dumps(bake.definition(), indent=2))
        proc = docker.start_bake(plan.command(bake, definition, metadata), tty=plan.progress == "tty")
        if cancel is not None:
            cancel.attach(proc)
        for line in proc.lines():
            item, shown = _route(line, by_name, vertex_item, only=items[0] if len(items) == 1 else None)
            if item is None:
                echo(line)
                continue
            item.tracker.feed(shown, time.monotonic())
            echo(item.prefix + shown)
        code = proc.wait()
        end = time.monotonic()
        if code != 0:
            return False, code
        data = json.loads(metadata.read_text())
        for item in items:
            digest = (data.get(item.name) or {}).get("containerimage.digest")
            if not digest:
                raise BuildError(f"buildx bake metadata has no digest for {item.name}")
            item.result = (digest, item.tracker.durations(end), round(end - start, 2))
    return True, 0


def with_causes(outcomes: dict, desired: Desired, *, docker_config: str | None = None) -> dict:
    """Each failed build's hint names its real cause where BuildKit's log shows it
    (`causes.push_hint`): e.g. a loopback registry that BuildKit's own container cannot reach,
    or one that wants a login (said first in the message, with the docker config it must be in)."""
    from buildkit_farm.causes import push_hint, refused_push
    from buildkit_farm.docker import DockerPaths

    host_network = all(dict(s.driver_opts).get("network") == "host" for s in desired.nodes)
    for name, outcome in outcomes.items():
        if isinstance(outcome, BuildError):
            cause = push_hint(outcome.message, driver=desired.builder.driver, host_network=host_network)
            if cause and refused_push(outcome.message):  # in the message: reports keep it too
                where = DockerPaths.resolve(docker_config).docker_config
                outcome.message = f'target "{name}": {cause} (farm uses the logins in {where})\n{outcome.message}'
                cause = None
            if cause:
                rest = (outcome.hint or "").split(". ", 1)[-1] if outcome.hint else ""
                outcome.hint = f"{cause}; {rest}" if rest else cause
    return outcomes


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
