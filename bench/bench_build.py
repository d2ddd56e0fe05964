"""Bench `farm build` on the lab, printed side by side in one run.

1. Overhead: `farm build` against the identical plain `docker buildx build --push` on the
   same warm farm (same builder, platforms, Dockerfile, --no-cache on both so each run
   really builds). Pass: ratio of medians <= 1.05.
2. Farm against the book's manual flow, on a workload that loads both platforms (amd64
   gets 10x the work, since arm64 runs ~10x slower under QEMU): the farm builds both
   variants at once on their nodes; the manual flow builds each variant one after the
   other (push each under its own tag) and then runs `imagetools create`. Reported ratio.

Usage: .venv/bin/python bench/bench_build.py [--runs N] [--work N]
Needs the lab (`make lab`). Uses a private DOCKER_CONFIG and its own builder, removed at
the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import tomli_w
from installed import environment
from installed import timed as run

from buildkit_farm.farmfile.toml import tomllib

ROOT = Path(__file__).resolve().parents[1]
FARM = str(Path(sys.executable).with_name("farm"))
PLATFORMS = ["linux/amd64", "linux/arm64"]

DOCKERFILE = """\
FROM 127.0.0.1:5000/base:latest
ARG TARGETARCH
ARG WORK=10000
ARG FACTOR=100
# Busy work in the shell: amd64 (native) gets FACTOR times the loop of arm64 (a busybox
# shell loop under QEMU runs ~100x slower here), so both variants take about as long and
# a farm can overlap them.
RUN n=$WORK; [ "$TARGETARCH" = amd64 ] && n=$((WORK * FACTOR)); \\
    i=0; while [ $i -lt $n ]; do i=$((i + 1)); done; echo "$TARGETARCH looped $i"
CMD ["uname", "-m"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per side (default 5)")
    parser.add_argument("--work", type=int, default=40000, help="arm64 loop count (default 40000: ~30 s a build)")
    parser.add_argument(
        "--factor", type=int, default=100, help="amd64 gets this many times the arm64 loop (default 100)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp:
        tmp_path = Path(tmp)
        builder = f"bench{uuid.uuid4().hex[:8]}"
        repo = f"127.0.0.1:5000/bench-build-{builder}"
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        farm_file = tmp_path / "farm.toml"
        data = tomllib.loads((ROOT / "lab" / "farm.toml").read_text())
        data["builder"]["name"] = builder
        for table in [data["builder"], *data.get("node", [])]:
            if isinstance(table.get("buildkitd_config"), str):
                table["buildkitd_config"] = str((ROOT / "lab" / table["buildkitd_config"]).resolve())
        data["target"] = [
            {
                "name": "bench",
                "context": str(ctx),
                "platforms": PLATFORMS,
                "tags": [f"{repo}:farm"],
                "args": {"WORK": str(args.work), "FACTOR": str(args.factor)},
            }
        ]
        farm_file.write_text(tomli_w.dumps(data))
        env = environment(DOCKER_CONFIG=str(tmp_path / "docker"))
        docker = ["docker", "buildx"]
        try:
            print(f"farm up ({builder}) ...", flush=True)
            run([FARM, "up", "-f", str(farm_file)], env)
            farm_cmd = [FARM, "build", "-f", str(farm_file), "--no-cache", "--progress", "plain"]

            def buildx_build(platforms: list[str], tag: str) -> list[str]:
                """The plain `docker buildx build --push` of the same Dockerfile and arguments."""
                return docker + [
                    "build",
                    "--builder",
                    builder,
                    "--platform",
                    ",".join(platforms),
                    "--provenance=false",
                    "--no-cache",
                    "--progress",
                    "plain",
                    "--build-arg",
                    f"WORK={args.work}",
                    "--build-arg",
                    f"FACTOR={args.factor}",
                    "--tag",
                    f"{repo}:{tag}",
                    "--push",
                    str(ctx),
                ]

            plain_cmd = buildx_build(PLATFORMS, "plain")

            def manual() -> float:
                # The book's manual flow: each variant in turn on its node, then one list.
                total = 0.0
                for platform in PLATFORMS:
                    total += run(
                        buildx_build([platform], platform.replace("/", "-")),
                        env,
                    )
                total += run(
                    docker
                    + ["imagetools", "create", "--tag", f"{repo}:manual"]
                    + [f"{repo}:{p.replace('/', '-')}" for p in PLATFORMS],
                    env,
                )
                return total

            print("warm-up ...", flush=True)
            report = tmp_path / "report.json"
            run(farm_cmd + ["--report", str(report)], env)
            for p in json.loads(report.read_text())["targets"][0]["platforms"]:
                print(f"  {p['platform']:<12} on {p['node']}: {p['duration_s']:.1f}s (balance check)", flush=True)
            run(plain_cmd, env)
            farm_t, plain_t, manual_t = [], [], []
            sides = [(farm_t, lambda: run(farm_cmd, env)), (plain_t, lambda: run(plain_cmd, env)), (manual_t, manual)]
            for i in range(args.runs):
                # Interleaved, so drift on the shared machine hits every side alike, and the order
                # rotated from run to run, so no side always follows the same one.
                shift = i % len(sides)
                for times, side in sides[shift:] + sides[:shift]:
                    times.append(side())
                print(
                    f"run {i + 1}: farm {farm_t[-1]:.2f}s  plain buildx {plain_t[-1]:.2f}s  manual {manual_t[-1]:.2f}s",
                    flush=True,
                )
        finally:
            subprocess.run(["docker", "buildx", "rm", "--force", builder], env=env, capture_output=True)

    farm_m, plain_m, manual_m = (statistics.median(t) for t in (farm_t, plain_t, manual_t))
    overhead = farm_m / plain_m
    speedup = farm_m / manual_m
    # On a shared machine the runs drift together; the pairs' ratios show it.
    paired = statistics.median(f / p for f, p in zip(farm_t, plain_t))
    paired_manual = statistics.median(f / m for f, m in zip(farm_t, manual_t))
    print()
    print(f"{'':34}{'median':>9}{'min':>9}{'max':>9}")
    for name, times in (
        ("farm build", farm_t),
        ("plain docker buildx build --push", plain_t),
        ("manual: one by one + imagetools", manual_t),
    ):
        print(f"{name:34}{statistics.median(times):8.2f}s{min(times):8.2f}s{max(times):8.2f}s")
    print()
    print(
        f"farm / plain buildx  = {overhead:.3f}  (must be <= 1.05: {'PASS' if overhead <= 1.05 else 'FAIL'}); "
        f"median of paired runs {paired:.3f}; farm's fixed cost {farm_m - plain_m:+.2f}s"
    )
    print(
        f"farm / manual flow   = {speedup:.3f}  (the farm builds both variants at once); "
        f"median of paired runs {paired_manual:.3f}"
    )
    sys.exit(0 if overhead <= 1.05 else 1)


if __name__ == "__main__":
    main()
