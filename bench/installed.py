"""How the benches run farm: as it runs installed, its modules' bytecode cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def environment(**extra: str) -> dict[str, str]:
    """This process's environment for timed farm runs, with `extra` set.

    As installed, Python caches compiled modules (.pyc); a session that sets
    PYTHONDONTWRITEBYTECODE would time the compiler on every run. A warm-up run writes them.
    """
    plugins = os.environ.get("FARM_BENCH_BUILDX_DIR")  # e.g. the lab's 0.29 (`lab/lab.sh env`)
    if plugins and "DOCKER_CONFIG" in extra:  # that buildx for both sides: they share the config
        config = Path(extra["DOCKER_CONFIG"])
        config.mkdir(parents=True, exist_ok=True)
        (config / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [plugins]}))
    return {**{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}, **extra}


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Run `cmd` once, its wall time in seconds; a failed run ends the bench with its output."""
    start = time.monotonic()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return elapsed
