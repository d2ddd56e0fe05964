"""Bench many targets on the lab: `farm build` against `docker buildx bake` of the same definitions.

One bake file defines N small two-platform targets (groups g1, g6, g12); the farm file takes
its targets from that same file (`[bake]`), so both sides build exactly the same
definitions on the same builder, `--no-cache`, the order of the sides rotated from run to
run, so drift on the shared machine (and whatever a run leaves to the next) hits all
alike. For N = 1 plain `docker buildx build --push` runs too, beside `farm build` of a farm
file with that one target as its own [[target]] (what a single-image user writes: no bake
file to resolve), at the small size and once more on a longer build (`--loop-one`, ~15 s
like bench_build.py's). Targets: 6 and 12 targets at most 1.10x bake, 1 target at most
1.05x plain buildx on the longer build. On the ~5 s build the ratio is printed, not
judged: farm's fixed cost (~0.2 s of it is starting Python with typer and pydantic) is
about 5% of so short a build by itself.

Prints per N the medians and ratios, and farm's fixed cost: per run (the N = 1 gap to plain
buildx) and per extra target (how the gap to bake grows from 1 to 12 targets).

Usage: .venv/bin/python bench/bench_targets.py [--runs N] [--sizes 1,6,12] [--loop-one 40000]
Needs the lab (`make lab`). Uses a private DOCKER_CONFIG and its own builder, removed at
the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import tomli_w
from installed import environment

from buildkit_farm.farmfile.toml import tomllib

ROOT = Path(__file__).resolve().parents[1]
FARM = str(Path(sys.executable).with_name("farm"))
PLATFORMS = ["linux/amd64", "linux/arm64"]
DOCKERFILE = """\
FROM 127.0.0.1:5000/base:latest
ARG NAME
ARG LOOP=2000
RUN echo "$NAME on $(uname -m)" > /banner && i=0; while [ $i -lt $LOOP ]; do i=$((i + 1)); done
CMD ["cat", "/banner"]
"""


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.monotonic()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return elapsed


def bake_definition(repo: str, sizes: list[int], loop: int = 2000) -> dict:
    biggest = max(sizes)
    targets = {
        f"t{i}": {
            "context": "ctx",
            "platforms": PLATFORMS,
            "args": {"NAME": f"t{i}", "LOOP": str(loop)},
            "tags": [f"{repo}-t{i}:bench"],
        }
        for i in range(1, biggest + 1)
    }
    groups = {f"g{n}": {"targets": [f"t{i}" for i in range(1, n + 1)]} for n in sizes}
    return {"group": groups, "target": targets}


def farm_file(tmp: Path, builder: str, group: str, *, own: dict | None = None) -> Path:
    """The lab's farm file on `builder`, its targets from the bake file's `group`, or (`own`)
    one [[target]] table of its own."""
    data = tomllib.loads((ROOT / "lab" / "farm.toml").read_text())
    data["builder"]["name"] = builder
    for table in [data["builder"], *data.get("node", [])]:
        if isinstance(table.get("buildkitd_config"), str):
            table["buildkitd_config"] = str((ROOT / "lab" / table["buildkitd_config"]).resolve())
    data.pop("target", None)
    if own is not None:
        data["target"] = [own]
    else:
        data["bake"] = {"files": ["docker-bake.json"], "targets": [group]}
    path = tmp / f"farm-{group}{'-own' if own else ''}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def single_target(tmp: Path, builder: str, repo: str, name: str, loop: int) -> tuple[list[str], list[str]]:
    """`farm build` of a farm file with `name` as its own [[target]], as bake_definition
    writes it, and the identical plain `docker buildx build --push`."""
    args = {"NAME": name, "LOOP": str(loop)}
    own = {"name": name, "context": "ctx", "platforms": PLATFORMS, "args": args, "tags": [f"{repo}-{name}:bench"]}
    farm = [FARM, "build", "-f", str(farm_file(tmp, builder, name, own=own)), "--no-cache", "--progress", "plain"]
    plain = ["docker", "buildx", "build", "--builder", builder, "--platform", ",".join(PLATFORMS)]
    plain += ["--provenance=false", "--no-cache", "--progress", "plain"]
    plain += [word for key, value in args.items() for word in ("--build-arg", f"{key}={value}")]
    plain += ["--tag", f"{repo}-plain-{name}:bench", "--push", "ctx"]
    return farm, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side and size (default 3)")
    parser.add_argument("--sizes", default="1,6,12", help="numbers of targets (default 1,6,12)")
    parser.add_argument(
        "--loop",
        type=int,
        default=10000,
        help="shell loop per image (default 10000: ~5 s on arm64 under QEMU here, ~6 s for one target; "
        "2000 gives ~2 s builds, where starting Python is a fifth of the run)",
    )
    parser.add_argument(
        "--loop-one",
        type=int,
        default=40000,
        help="loop of the longer single target, farm [[target]] against plain buildx build (default 40000: "
        "~15 s here, like bench_build.py's builds; 0 leaves it out)",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="farm-bench-targets-") as tmp_name:
        tmp = Path(tmp_name)
        builder = f"bench{uuid.uuid4().hex[:8]}"
        repo = f"127.0.0.1:5000/bench-targets-{builder}"
        (tmp / "ctx").mkdir()
        (tmp / "ctx" / "Dockerfile").write_text(DOCKERFILE)
        (tmp / "docker-bake.json").write_text(json.dumps(bake_definition(repo, sizes, args.loop), indent=2))
        files = {n: farm_file(tmp, builder, f"g{n}") for n in sizes}
        env = environment(DOCKER_CONFIG=str(tmp / "docker"))
        farm_cmd = {n: [FARM, "build", "-f", str(files[n]), "--no-cache", "--progress", "plain"] for n in sizes}
        # For one target, also the farm file a single-image user writes: one [[target]],
        # the same settings as bake's t1 (no bake file to resolve), beside plain buildx build.
        own_cmd, plain_cmd = single_target(tmp, builder, repo, "t1", args.loop)
        long_cmd, plain_long_cmd = single_target(tmp, builder, repo, "long", args.loop_one)
        bake_cmd = {
            n: ["docker", "buildx", "bake", "--builder", builder, "-f", "docker-bake.json", "--no-cache", "--push"]
            + ["--progress", "plain", "--set", "*.attest=type=provenance,disabled=true", f"g{n}"]
            for n in sizes
        }
        # Each size's sides, run in turn; "long" is the one longer target (N = 1 on the long build).
        rounds: list[tuple[int | str, list[tuple[str, list[str]]]]] = []
        for n in sizes:
            sides = [("farm", farm_cmd[n]), ("bake", bake_cmd[n])]
            if n == 1:
                sides += [("farm-own", own_cmd), ("plain", plain_cmd)]
            rounds.append((n, sides))
        if args.loop_one:
            rounds.append(("long", [("farm-own", long_cmd), ("plain", plain_long_cmd)]))
        times: dict[tuple[str, int | str], list[float]] = {}
        try:
            print(f"farm up ({builder}) ...", flush=True)
            run([FARM, "up", "-f", str(files[sizes[0]])], env, tmp)
            print("warm-up (base image on both nodes) ...", flush=True)
            run(farm_cmd[sizes[0]], env, tmp)
            run(bake_cmd[sizes[0]], env, tmp)
            # Every side once, so that none pays for its repository's first push in a timed run.
            warm = [own_cmd, plain_cmd] if 1 in sizes else []
            warm += [long_cmd, plain_long_cmd] if args.loop_one else []
            for cmd in warm:
                run(cmd, env, tmp)
            for i in range(args.runs):
                for n, sides in rounds:
                    shift = i % len(sides)  # rotate: over the runs each side takes every position alike
                    sides = sides[shift:] + sides[:shift]
                    line = []
                    for side, cmd in sides:
                        seconds = run(cmd, env, tmp)
                        times.setdefault((side, n), []).append(seconds)
                        line.append(f"{side} {seconds:.2f}s")
                    load = os.getloadavg()[0]
                    what = f"{n:>2} target(s)" if n != "long" else "1 long target"
                    print(f"run {i + 1}, {what}: " + "  ".join(line) + f"  (load {load:.1f})", flush=True)
        finally:
            subprocess.run(["docker", "buildx", "rm", "--force", builder], env=env, capture_output=True)

    print()
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min)")
    print(f"{'':28}{'median':>9}{'min':>9}{'max':>9}{'ratio':>8}{'paired':>8}  target")
    ok = True
    med = {key: statistics.median(value) for key, value in times.items()}
    for n in sizes:
        for side, base, limit in (("bake", "bake", None), ("farm", "bake", 1.10 if n > 1 else None)):
            t = times[(side, n)]
            ratio = med[(side, n)] / med[(base, n)]
            paired = statistics.median(a / b for a, b in zip(t, times[(base, n)]))
            verdict = ""
            if limit and side == "farm":
                verdict = f"<= {limit:.2f}x bake: {'PASS' if ratio <= limit else 'FAIL'}"
                ok &= ratio <= limit
            name = f"{side} ({n} target{'s' if n > 1 else ''})"
            print(f"{name:28}{med[(side, n)]:8.2f}s{min(t):8.2f}s{max(t):8.2f}s{ratio:8.3f}{paired:8.3f}  {verdict}")
        if n == 1:
            for side, name in (("plain", "plain buildx build (1)"), ("farm-own", "farm, [[target]] (1)")):
                t = times[(side, 1)]
                print(f"{name:28}{med[(side, 1)]:8.2f}s{min(t):8.2f}s{max(t):8.2f}s")
            for side, name in (("farm-own", "farm [[target]]"), ("farm", "farm [bake]")):
                ratio = med[(side, 1)] / med[("plain", 1)]
                paired = statistics.median(a / b for a, b in zip(times[(side, 1)], times[("plain", 1)]))
                print(f"{'':28}{name} / plain buildx build: {ratio:.3f} (paired {paired:.3f}) (reported)")
    if args.loop_one:
        for side, name in (("plain", "plain buildx build (long)"), ("farm-own", "farm, [[target]] (long)")):
            t = times[(side, "long")]
            print(f"{name:28}{med[(side, 'long')]:8.2f}s{min(t):8.2f}s{max(t):8.2f}s")
        ratio = med[("farm-own", "long")] / med[("plain", "long")]
        paired = statistics.median(a / b for a, b in zip(times[("farm-own", "long")], times[("plain", "long")]))
        verdict = f"<= 1.05: {'PASS' if ratio <= 1.05 else 'FAIL'}"
        print(f"{'':28}farm [[target]] / plain buildx build: {ratio:.3f} (paired {paired:.3f}) {verdict}")
        ok &= ratio <= 1.05
    print()
    for n, what in ((1, f"--loop {args.loop}"), ("long", f"--loop-one {args.loop_one}")):
        if ("plain", n) in med:
            own_gap = med[("farm-own", n)] - med[("plain", n)]
            bake_gap = f"; with a bake file to resolve: {med[('farm', n)] - med[('plain', n)]:+.2f}s" if n == 1 else ""
            print(f"farm's fixed cost per run (1 target, {what}, vs plain buildx): {own_gap:+.2f}s{bake_gap}")
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        per_target = ((med[("farm", hi)] - med[("bake", hi)]) - (med[("farm", lo)] - med[("bake", lo)])) / (hi - lo)
        print(f"farm's cost per extra target (gap to bake, {lo} -> {hi} targets): {per_target:+.2f}s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
