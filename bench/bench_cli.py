"""Bench the commands people run most: `farm --help` and `farm validate` of a big farm file.

Prints the median wall time of N runs of each (whole processes, as a user runs them), the
targets (0.15 s and 0.3 s), and which commands import python_on_whales (none of these may).
Beside them, for scale, the same figures for Python alone and for importing the chosen
dependencies (typer, pydantic) without any farm code: no farm command can be faster.
With --instructions, each row also gets its instruction count under valgrind's callgrind,
which, unlike seconds, does not move with the load of this shared machine.
Run: .venv/bin/python bench/bench_cli.py [--runs N] [--instructions]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from installed import environment

# The installed console script, as users run it (its entry point tunes the collector).
SCRIPT = Path(sys.executable).with_name("farm")
FARM = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "buildkit_farm"]
TARGETS = {"farm --help": 0.15, "farm validate (200 nodes, 50 targets)": 0.30}
PLATFORMS = [
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/386",
    "linux/s390x",
    "linux/ppc64le",
    "linux/riscv64",
]


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
            f'[[target]]\nname = "app{index}"\ncontext = "app"\nplatforms = {PLATFORMS[: 1 + index % 8]!r}\n'.replace(
                "'", '"'
            )
            + f'tags = ["127.0.0.1:5000/app{index}:{{version}}"]\nargs = {{ N = "{index}" }}\n'
        )
    path = folder / "multiarch.toml"
    path.write_text("\n".join(lines))
    return path


ENV = environment()


def time_rows(rows: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float, float]]:
    """Median wall, median CPU (user + sys) and fastest wall time of each row's command.

    The rows take turns, run by run, so that all of them see the same moments of this shared
    machine, whose speed drifts by half over minutes: side by side, they compare.
    """
    walls: dict[str, list[float]] = {label: [] for label in rows}
    cpus: dict[str, list[float]] = {label: [] for label in rows}
    for args in rows.values():
        subprocess.run(args, capture_output=True, env=ENV)  # warm-up: writes the .pyc files
    for _ in range(runs):
        for label, args in rows.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(args, capture_output=True, text=True, env=ENV)
            walls[label].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus[label].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return {
        label: (statistics.median(walls[label]), statistics.median(cpus[label]), min(walls[label])) for label in rows
    }


def whales_imported(command: list[str]) -> list[str]:
    """The python_on_whales modules a command imports, read from `python -X importtime`."""
    farm = FARM[1:] if FARM[0] == sys.executable else FARM
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *farm, *command], capture_output=True, text=True, env=ENV
    )
    return sorted({line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "python_on_whales" in line})


def instructions(args: list[str]) -> int | None:
    """Instructions one run executes, counted by callgrind (None without valgrind)."""
    if not shutil.which("valgrind"):
        return None
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *args],
        capture_output=True,
        text=True,
        env=ENV,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    return int(found.group(1)) if found else None


# What any command pays before farm's own code runs. typer 0.2x coerces every option through
# a pydantic TypeAdapter, so a typed command pays for both. Each runs with the collector
# tuned as buildkit_farm/__main__.py tunes it for farm, so that the rows compare.
TUNED = "import gc; gc.set_threshold(50_000, 20, 20)\n{}\ngc.freeze()"
FLOORS = {
    "python alone": ["-c", "pass"],
    "python + import typer": ["-c", TUNED.format("import typer")],
    "python + import pydantic (BaseModel)": ["-c", TUNED.format("from pydantic import BaseModel")],
    "python + typer + pydantic (floor)": [
        "-c",
        TUNED.format("import typer, pydantic; from pydantic import BaseModel, Field, TypeAdapter; TypeAdapter(int)"),
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions with callgrind (~30 s a row)"
    )
    options = parser.parse_args()
    runs = options.runs
    with tempfile.TemporaryDirectory() as tmp:
        farm_file = big_farm_file(Path(tmp))
        commands = {
            "farm --help": ["--help"],
            "farm validate (200 nodes, 50 targets)": ["validate", "-f", str(farm_file)],
        }
        scale = {
            **{label: [sys.executable, *args] for label, args in FLOORS.items()},
            "farm validate --help": FARM + ["validate", "--help"],
        }
        rows = {**{label: FARM + command for label, command in commands.items()}, **scale}
        ok = True
        load = os.getloadavg()[0]
        print(
            f"median of {runs} runs on this machine, rows taking turns "
            f"(python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load:.2f}):"
        )
        timed = time_rows(rows, runs)
        for label, (wall, cpu, fastest) in timed.items():
            count = instructions(rows[label]) if options.instructions else None
            counted = f", {count / 1e6:.0f} M instructions" if count else ""
            target = TARGETS.get(label)
            verdict = f"target <= {target:.2f} s: {'ok' if wall <= target else 'TOO SLOW'}" if target else "for scale"
            ok &= target is None or wall <= target
            print(f"  {label:<40} {wall:6.3f} s wall ({cpu:.3f} s cpu, fastest {fastest:.3f} s{counted})   {verdict}")
        # Which floor bounds which command: --help needs typer, validate both libraries.
        for label, floor in (
            ("farm --help", "python + import typer"),
            ("farm validate (200 nodes, 50 targets)", "python + typer + pydantic (floor)"),
        ):
            if timed[floor][0] > TARGETS[label]:
                print(
                    f"  note: {floor!r}, with no farm code, took {timed[floor][0]:.3f} s: "
                    f"above the {TARGETS[label]:.2f} s target of {label!r}; this machine is in a slow phase "
                    f"(python alone {timed['python alone'][0]:.3f} s)"
                )
        if load > 1.0:
            print(
                f"  note: other work is running (load {load:.2f} on {os.cpu_count()} cores); "
                "wall times are inflated, cpu times less so"
            )
        for label, command in {**commands, "farm schema": ["schema"]}.items():
            modules = whales_imported(command)
            print(f"  {label:<40} imports python_on_whales: {'yes: ' + ', '.join(modules[:3]) if modules else 'no'}")
            ok &= not modules
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
