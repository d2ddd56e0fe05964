"""The farm lock: a second holder waits, then gives up naming the first; a dead holder frees it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from buildkit_farm.errors import LockTimeout
from buildkit_farm.reconcile import lock

HOLD = """
import sys, time
from pathlib import Path
from buildkit_farm.reconcile import lock
with lock.hold(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(tmp_path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_times_out_naming_the_first(tmp_path):
    proc = _holder(tmp_path, 30)
    waited = []
    try:
        t0 = time.monotonic()
        with pytest.raises(LockTimeout) as err, lock.hold(tmp_path, timeout=0.5, on_wait=waited.append):
            pass
        assert time.monotonic() - t0 >= 0.5
        assert f"(pid {proc.pid})" in err.value.message and "--lock-timeout" in err.value.hint
        assert waited and "waiting for another farm run" in waited[0]
    finally:
        proc.kill()
        proc.wait()


def test_waits_then_gets_it_when_the_holder_finishes(tmp_path):
    proc = _holder(tmp_path, 0.5)
    with lock.hold(tmp_path, timeout=10) as path:
        assert path.read_text().strip() == str(os.getpid())
    proc.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    proc = _holder(tmp_path, 30)
    proc.kill()
    proc.wait()
    with lock.hold(tmp_path, timeout=1):
        pass


def test_a_waiting_runner_outlasts_a_dead_holders_node_lock_by_default():
    """With the defaults, a runner waiting behind one killed on another machine takes its lock
    over (the lock goes stale before the waiter gives up), and outwaits a holder waiting for builds."""
    import inspect

    from buildkit_farm import cli
    from buildkit_farm.reconcile import holds, lock

    assert lock.DEFAULT_TIMEOUT > holds.DEFAULT_TTL > holds.DEFAULT_WAIT
    for command in (cli.up_cmd, cli.down_cmd):
        assert inspect.signature(command).parameters["lock_timeout"].default == lock.DEFAULT_TIMEOUT
        assert inspect.signature(command).parameters["lock_ttl"].default == holds.DEFAULT_TTL
