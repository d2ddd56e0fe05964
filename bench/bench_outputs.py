"""Bench the cost of `farm build`'s outputs for a pipeline on a converged build.

A warm farm and a cached Dockerfile (so each run pushes the same layers and moves the tags),
timed side by side: plain `farm build` against `farm build --metadata-file FILE --report
FILE` (the outputs the action hands to the next step: the metadata file reads each list's
descriptor back from the registry). Pass: ratio of medians <= 1.05.

Usage: .venv/bin/python bench/bench_outputs.py [--runs N]
Needs the lab (`make lab`). Uses a private DOCKER_CONFIG and its own builder, removed at
the end.
"""

from __future__ import annotations

import argparse
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per side (default 7)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp:
        tmp_path = Path(tmp)
        builder = f"bench{uuid.uuid4().hex[:8]}"
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            'FROM 127.0.0.1:5000/base:latest\nRUN echo built > /built\nCMD ["cat", "/built"]\n'
        )
        data = tomllib.loads((ROOT / "lab" / "farm.toml").read_text())
        data["builder"]["name"] = builder
        data["builder"]["buildkitd_config"] = str((ROOT / "lab" / data["builder"]["buildkitd_config"]).resolve())
        data["target"] = [
            {
                "name": "bench",
                "context": str(ctx),
                "platforms": ["linux/amd64", "linux/arm64"],
                "tags": [f"127.0.0.1:5000/bench-outputs-{builder}:1", f"127.0.0.1:5000/bench-outputs-{builder}:latest"],
            }
        ]
        farm_file = tmp_path / "farm.toml"
        farm_file.write_text(tomli_w.dumps(data))
        env = environment(DOCKER_CONFIG=str(tmp_path / "docker"), NO_COLOR="1")
        plain = [FARM, "build", "-f", str(farm_file), "--progress", "plain"]
        outputs = plain + ["--metadata-file", str(tmp_path / "meta.json"), "--report", str(tmp_path / "report.json")]
        try:
            print(f"farm up ({builder}) and a warm-up build ...", flush=True)
            run([FARM, "up", "-f", str(farm_file)], env)
            run(outputs, env)
            plain_t: list[float] = []
            outputs_t: list[float] = []
            for i in range(args.runs):  # interleaved, the order alternating: drift hits both alike
                sides = [(plain_t, plain), (outputs_t, outputs)]
                for times, cmd in sides if i % 2 == 0 else sides[::-1]:
                    times.append(run(cmd, env))
                print(f"run {i + 1}: plain {plain_t[-1]:.2f}s  with outputs {outputs_t[-1]:.2f}s", flush=True)
        finally:
            run([FARM, "down", "-f", str(farm_file)], env)
    plain_m, outputs_m = statistics.median(plain_t), statistics.median(outputs_t)
    ratio = outputs_m / plain_m
    paired = statistics.median(o / p for o, p in zip(outputs_t, plain_t))
    spread = statistics.median(abs(t - plain_m) for t in plain_t)
    print()
    print(f"plain farm build          median {plain_m:.2f}s  (min {min(plain_t):.2f}s, max {max(plain_t):.2f}s)")
    print(f"--metadata-file --report  median {outputs_m:.2f}s  (min {min(outputs_t):.2f}s, max {max(outputs_t):.2f}s)")
    print(
        f"ratio {ratio:.3f} (must be <= 1.05: {'PASS' if ratio <= 1.05 else 'FAIL'}); median of paired runs "
        f"{paired:.3f}; difference {outputs_m - plain_m:+.2f}s against a run-to-run spread of {spread:.2f}s"
    )
    sys.exit(0 if ratio <= 1.05 else 1)


if __name__ == "__main__":
    main()
