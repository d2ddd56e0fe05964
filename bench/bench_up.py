"""Bench: a converged `farm up` on the two-node lab, against the plain script users rerun.

    .venv/bin/python bench/bench_up.py [--runs N]

Prints, side by side: the median wall time, and the number of docker CLI invocations
(counted by a `docker` shim first on PATH) and whether they change anything. The plain
script is what the book's setup becomes when rerun: `buildx rm` + `create` + `create
--append` + `inspect --bootstrap` (it loses the BuildKit containers, and without
--keep-state their cache, every time).

Targets (issue 4): converged `farm up` median <= 1.0 s, <= 4 docker calls, all read-only.

    .venv/bin/python bench/bench_up.py --scale [--runs N]

The same farm at 2, 4 and 8 nodes (issue 11): `farm up` from nothing, converged `farm up`
and `farm status`, medians side by side. Extra nodes are extra endpoints of the lab's three
engines (node1's socket, node2 over ssh, over tcp+TLS and by socket, node3's socket, and
symlinks to those sockets): each buildx node still runs its own BuildKit container. Targets:
converged up and status at 8 nodes <= 1.5x their time at 2; up from nothing <= 2x.
Needs the lab (`lab/lab.sh up`). Uses a private Docker config and a unique builder name.

    .venv/bin/python bench/bench_up.py --fresh [--runs N] [--farm PATH]

A converged `farm up` from a fresh runner (issue 24): the farm is up (made by one Docker
config), then each run is a new, empty Docker config standing for a new CI machine. Prints
the median time and the docker CLI calls, by kind; `--farm` runs another `farm` (e.g. a
wrapper around an older tree) for the figure before.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

from buildkit_farm.farmfile.toml import tomllib

ROOT = Path(__file__).resolve().parents[1]
FARM = str(Path(sys.executable).with_name("farm"))
READ_ONLY = ("container inspect", "exec ", "context inspect", "buildx inspect", "buildx ls", "buildx version")


def counting_shim(tmp: Path) -> tuple[Path, Path]:
    """A `docker` first on PATH (the folder returned) that logs each call's arguments to the log file."""
    log, shim = tmp / "calls.log", tmp / "shim"
    shim.mkdir()
    real = shutil.which("docker")
    (shim / "docker").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    (shim / "docker").chmod(0o755)
    return log, shim


def lab_farm_file(tmp: Path, builder: str) -> tuple[Path, dict]:
    """lab/farm.toml under another builder name, no targets, its paths absolute, written in `tmp`."""
    data = tomllib.loads((ROOT / "lab" / "farm.toml").read_text())
    data["builder"]["name"] = builder
    data.pop("target", None)
    for table in [data["builder"], *data.get("node", [])]:
        if isinstance(table.get("buildkitd_config"), str):
            table["buildkitd_config"] = str((ROOT / "lab" / table["buildkitd_config"]).resolve())
    farm_file = tmp / "farm.toml"
    farm_file.write_text(tomli_w.dumps(data))
    return farm_file, data


def main() -> int:
    global FARM
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--scale", action="store_true", help="farm up/status at 2, 4 and 8 nodes, side by side (issue 11)")
    ap.add_argument("--fresh", action="store_true", help="converged `farm up` from fresh runners (issue 24)")
    ap.add_argument("--farm", default=FARM, help="the farm program to time (default: this venv's)")
    args = ap.parse_args()
    FARM = args.farm  # every mode times the farm asked for (another checkout's, for before/after)
    if args.scale:
        return scale(args.runs)
    if args.fresh:
        return fresh(args.runs, args.farm)

    tmp = Path(tempfile.mkdtemp(prefix="bench-up-"))
    log, shim = counting_shim(tmp)
    builder = f"bench{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "PATH": f"{shim}:{os.environ['PATH']}",
        "DOCKER_CONFIG": str(tmp / "farm-config"),
        "NO_COLOR": "1",
    }
    env.pop("BUILDX_CONFIG", None)

    farm_file, data = lab_farm_file(tmp, builder)

    def farm(*a: str) -> subprocess.CompletedProcess:
        r = subprocess.run([FARM, *a, "-f", str(farm_file)], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"farm {' '.join(a)} failed:\n{r.stdout}\n{r.stderr}")
        return r

    def timed_calls(fn) -> tuple[float, list[str]]:
        log.unlink(missing_ok=True)
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        return dt, (log.read_text().splitlines() if log.exists() else [])

    try:
        cold, cold_calls = timed_calls(lambda: farm("up"))
        runs = [timed_calls(lambda: farm("up")) for _ in range(args.runs)]
        farm_med = statistics.median(t for t, _ in runs)
        farm_calls = runs[-1][1]
        farm_mutating = [c for c in farm_calls if not any(v in c for v in READ_ONLY)]

        # The plain script, in a Docker config of its own, with the book's two contexts.
        plain_env = {**env, "DOCKER_CONFIG": str(tmp / "plain-config")}
        plain = f"{builder}p"
        nodes = data["node"]
        for n in nodes:
            subprocess.run(
                ["docker", "context", "create", n["name"], "--docker", f"host={n['endpoint']}"],
                env=plain_env,
                capture_output=True,
                check=True,
            )

        def opts(n: dict) -> list[str]:
            o = {**data["builder"].get("driver_opts", {}), **n.get("driver_opts", {})}
            if data["builder"].get("buildkit_image"):
                o.setdefault("image", data["builder"]["buildkit_image"])
            out = [x for k, v in o.items() for x in ("--driver-opt", f"{k}={v}")]
            return out + [x for p in n.get("platforms", []) for x in ("--platform", p)]

        def plain_script() -> None:
            def sh(*a: str, check: bool = True) -> None:
                subprocess.run(["docker", *a], env=plain_env, capture_output=True, check=check)

            sh("buildx", "rm", plain, check=False)
            sh(
                "buildx",
                "create",
                "--name",
                plain,
                "--driver",
                "docker-container",
                "--node",
                f"{plain}-{nodes[0]['name']}",
                *opts(nodes[0]),
                nodes[0]["name"],
            )
            for n in nodes[1:]:
                sh(
                    "buildx",
                    "create",
                    "--append",
                    "--name",
                    plain,
                    "--node",
                    f"{plain}-{n['name']}",
                    *opts(n),
                    n["name"],
                )
            sh("buildx", "inspect", "--bootstrap", plain)

        plain_script()  # first run, not timed (same as farm's cold run)
        plain_runs = [timed_calls(plain_script) for _ in range(max(3, args.runs // 2))]
        plain_med = statistics.median(t for t, _ in plain_runs)
        plain_calls = plain_runs[-1][1]

        print(f"lab: 2 nodes ({', '.join(n['name'] for n in nodes)}); builder {builder}; {args.runs} runs")
        print(f"first `farm up` (from nothing): {cold:.2f} s, {len(cold_calls)} docker calls")
        print()
        print(f"{'':34}{'farm up (converged)':>22}{'plain script (rerun)':>24}")
        print(f"{'median wall time':34}{farm_med:>20.2f} s{plain_med:>22.2f} s")
        print(f"{'docker CLI invocations':34}{len(farm_calls):>22}{len(plain_calls):>24}")
        print(f"{'  of which mutating':34}{len(farm_mutating):>22}{len(plain_calls) - 1:>24}")
        print(f"{'BuildKit containers kept':34}{'yes':>22}{'no (recreated)':>24}")
        print()
        print("farm's docker calls: " + ("; ".join(farm_calls) or "(none)"))
        ok = farm_med <= 1.0 and len(farm_calls) <= 4 and not farm_mutating
        print(f"targets (<= 1.0 s, <= 4 calls, all read-only): {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        subprocess.run([FARM, "down", "-f", str(farm_file)], env=env, capture_output=True)
        subprocess.run(
            ["docker", "buildx", "rm", f"{builder}p"],
            env={**env, "DOCKER_CONFIG": str(tmp / "plain-config")},
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


def fresh(runs: int, farm_bin: str) -> int:
    """Converged `farm up` from fresh runners: each run a new Docker config, the nodes already up."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-fresh-"))
    log, shim = counting_shim(tmp)
    builder = f"benchf{secrets.token_hex(3)}"
    farm_file, data = lab_farm_file(tmp, builder)
    base = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "NO_COLOR": "1"}
    base.pop("BUILDX_CONFIG", None)

    def farm(config: Path, *a: str) -> subprocess.CompletedProcess:
        env = {**base, "DOCKER_CONFIG": str(config)}
        r = subprocess.run([farm_bin, *a, "-f", str(farm_file)], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"farm {' '.join(a)} failed ({config}):\n{r.stdout}\n{r.stderr}")
        return r

    first = tmp / "runner-0"
    configs = [first]
    try:
        farm(first, "up")
        times, calls = [], []
        for i in range(1, runs + 1):
            config = tmp / f"runner-{i}"
            configs.append(config)
            log.unlink(missing_ok=True)
            t0 = time.perf_counter()
            out = farm(config, "up")
            times.append(time.perf_counter() - t0)
            calls.append(log.read_text().splitlines() if log.exists() else [])
            if "buildkit" in out.stdout and "~ buildkit" in out.stdout:
                sys.exit(f"a fresh runner restarted a BuildKit container:\n{out.stdout}")
        last = calls[-1]
        kinds: dict[str, int] = {}
        for c in last:
            words = [w for w in c.split() if not w.startswith("-") and "/" not in w and w != "docker"]
            kind = " ".join(words[:2]) if words[:1] in (["buildx"], ["context"], ["container"]) else words[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        print(f"lab: 2 nodes; builder {builder}; {runs} fresh runners, each a new Docker config; farm: {farm_bin}")
        print(f"converged `farm up` from a fresh runner: median {statistics.median(times):.2f} s")
        print(f"docker CLI calls: {len(last)} ({', '.join(f'{k} x{n}' for k, n in sorted(kinds.items()))})")
        for c in last:
            print(f"  docker {c}")
        return 0
    finally:
        farm(first, "down")
        for config in configs[1:]:
            subprocess.run(
                ["docker", "buildx", "rm", "--keep-state", "--force", builder],
                env={**base, "DOCKER_CONFIG": str(config)},
                capture_output=True,
            )
        shutil.rmtree(tmp, ignore_errors=True)


def _endpoints(tmp: Path) -> list[dict]:
    """Eight distinct endpoints on the lab's engines, in the order the farm grows."""
    state = Path(os.environ.get("FARM_LAB_STATE", "/var/lib/buildkit-farm-lab"))
    node2, node3 = state / "node2" / "docker.sock", state / "node3" / "docker.sock"
    links = tmp / "sockets"
    links.mkdir(exist_ok=True)
    for name, target in (("n1b", Path("/var/run/docker.sock")), ("n3b", node3), ("n2b", node2), ("n3c", node3)):
        (links / f"{name}.sock").unlink(missing_ok=True)
        (links / f"{name}.sock").symlink_to(target)
    tls = {k: str(state / "tls" / f) for k, f in (("ca", "ca.pem"), ("cert", "client.pem"), ("key", "client.key"))}
    return [
        {"endpoint": "unix:///var/run/docker.sock"},
        {"endpoint": "ssh://farm@127.0.0.1:2222"},
        {"endpoint": f"unix://{node3}"},
        {"endpoint": "tcp://127.0.0.1:2376", "tls": tls},
        {"endpoint": f"unix://{node2}"},
        {"endpoint": f"unix://{links / 'n1b.sock'}"},
        {"endpoint": f"unix://{links / 'n3b.sock'}"},
        {"endpoint": f"unix://{links / 'n3c.sock'}"},
    ]


def scale(runs: int) -> int:
    """farm up (cold and converged) and farm status at 2, 4 and 8 nodes, in one run.

    The sizes are measured in turns (2, 4, 8, 2, 4, 8, ...), so a slow phase of this shared
    machine weighs on every size alike instead of on whichever ran during it.
    """
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    endpoints = _endpoints(tmp)
    base = tomllib.loads((ROOT / "lab" / "farm.toml").read_text())
    sizes = (2, 4, 8)
    farms: dict[int, tuple[Path, dict[str, str]]] = {}
    times: dict[tuple[int, str], list[float]] = {(n, k): [] for n in sizes for k in ("cold", "up", "status")}
    try:
        for n in sizes:
            env = {**os.environ, "DOCKER_CONFIG": str(tmp / f"config-{n}"), "NO_COLOR": "1"}
            env.pop("BUILDX_CONFIG", None)
            nodes = []
            for i, where in enumerate(endpoints[:n]):
                # amd64 on node1's endpoints, an arm64 pool across the others (the pools' shape)
                platforms = ["linux/amd64"] if i in (0, 5) else ["linux/arm64"]
                nodes.append({"name": f"s{i + 1}", **where, "platforms": platforms})
            data = {
                "builder": {
                    "name": f"scale{n}x{secrets.token_hex(2)}",
                    "driver_opts": base["builder"].get("driver_opts", {}),
                    "buildkitd_config": str((ROOT / "lab" / base["builder"]["buildkitd_config"]).resolve()),
                },
                "node": nodes,
            }
            farm_file = tmp / f"farm-{n}.toml"
            farm_file.write_text(tomli_w.dumps(data))
            farms[n] = (farm_file, env)

        def farm(n: int, *a: str) -> float:
            farm_file, env = farms[n]
            t0 = time.perf_counter()
            r = subprocess.run([FARM, *a, "-f", str(farm_file)], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"farm {' '.join(a)} ({n} nodes) failed:\n{r.stdout}\n{r.stderr}")
            return time.perf_counter() - t0

        for n in sizes:
            times[(n, "cold")].append(farm(n, "up"))  # contexts, builder, nodes, BuildKits: all new
        for _ in range(runs):
            for n in sizes:
                times[(n, "up")].append(farm(n, "up"))
            for n in sizes:
                times[(n, "status")].append(farm(n, "status"))
        for _ in range(max(1, runs // 3)):
            for n in sizes:
                farm(n, "down", "--keep-state")  # from nothing again, BuildKit state volumes kept
                times[(n, "cold")].append(farm(n, "up"))
        med = {key: statistics.median(values) for key, values in times.items()}
        cold_runs = len(times[(2, "cold")])
        print(
            f"farm up / status at 2, 4 and 8 nodes on the lab (medians of {runs} runs in turns; cold: of {cold_runs})"
        )
        print(f"{'':32}{'2 nodes':>10}{'4 nodes':>10}{'8 nodes':>10}{'8 / 2':>8}  target")
        ok = True
        for key, label, limit in (
            ("cold", "farm up from nothing", 2.0),
            ("up", "farm up, converged", 1.5),
            ("status", "farm status", 1.5),
        ):
            ratio = med[(8, key)] / med[(2, key)]
            ok &= ratio <= limit
            row = "".join(f"{med[(n, key)]:>8.2f} s" for n in sizes)
            print(f"{label:32}{row}{ratio:>7.2f}x  <= {limit}x")
        print(f"targets: {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        for farm_file, env in farms.values():
            subprocess.run([FARM, "down", "-f", str(farm_file)], env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
