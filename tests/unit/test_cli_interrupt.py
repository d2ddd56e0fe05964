"""Ctrl-C reaches the user as a message and exit 130 (typer alone exits 130 silently)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from farms import ONE_NODE

FARM = ONE_NODE
HOLD = """
import sys, time
from pathlib import Path
from buildkit_farm.reconcile import lock
with lock.hold(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_ctrl_c_while_farm_up_waits_for_the_lock(tmp_path):
    docker_config = tmp_path / "docker"
    farm = tmp_path / "farm.toml"
    farm.write_text(FARM)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(docker_config / "buildkit-farm")], stdout=subprocess.PIPE, text=True
    )
    # `farm up` asks buildx its version before the lock; a stand-in answers (the unit half runs
    # with no docker at all, and this test is about the lock, not about Docker).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\necho 'github.com/docker/buildx v0.13.1 0.13.1'\n")
    (bin_dir / "docker").chmod(0o755)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        up = subprocess.Popen(
            [sys.executable, "-m", "buildkit_farm", "up", "-f", str(farm), "--docker-config", str(docker_config)],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1", "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
        assert up.stderr is not None
        line = up.stderr.readline()  # the wait is announced before the first sleep
        assert "waiting for another farm run" in line
        time.sleep(0.3)
        t0 = time.monotonic()
        up.send_signal(signal.SIGINT)
        rest = up.stderr.read()
        assert up.wait(timeout=10) == 130
        assert time.monotonic() - t0 < 15  # a loaded machine: the point is that it stops, not waits
        assert "error: interrupted (Ctrl-C)" in rest and "hint:" in rest
        assert "Traceback" not in rest
    finally:
        holder.kill()
        holder.wait()
