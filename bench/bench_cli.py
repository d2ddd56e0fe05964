"""Bench the commands people run most: `farm --help` and `farm validate` of a big farm file.

Prints the median wall time of N runs of each (whole processes, as a user runs them), the
targets (0.15 s and 0.3 s), and which commands import python_on_whales (none of these may).
Run: .venv/bin/python bench/bench_cli.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FARM = [sys.executable, "-c", "from buildkit_farm.cli import main; main()"]
TARGETS = {"farm --help": 0.15, "farm validate (200 nodes, 50 targets)": 0.30}
PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/386", "linux/s390x", "linux/ppc64le", "linux/riscv64"]


def big_farm_file(folder: Path, nodes: int = 200, targets: int = 50) -> Path:
    """A valid farm file: `nodes` nodes (8 of them pinned), `targets` targets with Dockerfiles."""
    (folder / "app").mkdir()
    (folder / "app" / "Dockerfile").write_text("FROM scratch\n")
    lines = ['[builder]\nname = "bench"\ndriver_opts = { network = "host" }\n']
    for index in range(nodes):
        pin = f'platforms = ["{PLATFORMS[index]}"]\n' if index < len(PLATFORMS) else ""
        lines.append(f'[[node]]\nname = "node{index}"\nendpoint = "ssh://farm@host{index}.example"\n{pin}')
    for index in range(targets):
        lines.append(
            f'[[target]]\nname = "app{index}"\ncontext = "app"\nplatforms = {PLATFORMS[: 1 + index % 8]!r}\n'.replace("'", '"')
            + f'tags = ["127.0.0.1:5000/app{index}:{{version}}"]\nargs = {{ N = "{index}" }}\n'
        )
    path = folder / "multiarch.toml"
    path.write_text("\n".join(lines))
    return path


# As installed, Python caches compiled modules (.pyc); a session that sets
# PYTHONDONTWRITEBYTECODE would time the compiler instead of farm. One warm-up run writes them.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def median_seconds(args: list[str], runs: int) -> tuple[float, float, float]:
    """Median wall time, median CPU time (user + sys) and fastest wall time of `runs` runs (after a warm-up)."""
    subprocess.run(args, capture_output=True, env=ENV)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, env=ENV)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return statistics.median(walls), statistics.median(cpus), min(walls)


def whales_imported(command: list[str]) -> list[str]:
    """The python_on_whales modules a command imports, read from `python -X importtime`."""
    done = subprocess.run([sys.executable, "-X", "importtime", *FARM[1:], *command], capture_output=True, text=True, env=ENV)
    return sorted({line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "python_on_whales" in line})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        farm_file = big_farm_file(Path(tmp))
        commands = {
            "farm --help": ["--help"],
            "farm validate (200 nodes, 50 targets)": ["validate", "-f", str(farm_file)],
        }
        ok = True
        load = os.getloadavg()[0]
        print(f"median of {runs} runs on this machine (python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load:.2f}):")
        for label, command in commands.items():
            wall, cpu, fastest = median_seconds(FARM + command, runs)
            target = TARGETS[label]
            verdict = "ok" if wall <= target else "TOO SLOW"
            ok &= wall <= target
            print(f"  {label:<40} {wall:6.3f} s wall ({cpu:.3f} s cpu, fastest {fastest:.3f} s)   target <= {target:.2f} s: {verdict}")
        # For scale: what every typed command pays before farm's own code runs (typer 0.2x
        # coerces options through pydantic), and `farm validate --help`, which reads no file.
        floor = [sys.executable, "-c", "import typer, pydantic; from pydantic import BaseModel, Field, TypeAdapter; TypeAdapter(int)"]
        for label, args in {"python + typer + pydantic (floor)": floor, "farm validate --help": FARM + ["validate", "--help"]}.items():
            wall, cpu, fastest = median_seconds(args, runs)
            print(f"  {label:<40} {wall:6.3f} s wall ({cpu:.3f} s cpu, fastest {fastest:.3f} s)   for scale")
        if load > 1.0:
            print(f"  note: other work is running (load {load:.2f} on {os.cpu_count()} cores); wall times are inflated, cpu times less so")
        for label, command in {**commands, "farm schema": ["schema"]}.items():
            modules = whales_imported(command)
            print(f"  {label:<40} imports python_on_whales: {'yes: ' + ', '.join(modules[:3]) if modules else 'no'}")
            ok &= not modules
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
