"""The farm lock as a reader-writer lock: builds (shared) run together, `up`/`down`
(exclusive) wait for them and they for it; reentrant within one process."""

from __future__ import annotations

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
with lock.hold(Path(sys.argv[1]), shared=sys.argv[3] == "shared"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(tmp_path, seconds: float, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), str(seconds), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture()
def build_running(tmp_path):
    proc = _holder(tmp_path, 30, "shared")
    yield proc
    proc.kill()
    proc.wait()


def test_builds_share_the_lock(tmp_path, build_running):
    t0 = time.monotonic()
    with lock.hold(tmp_path, timeout=2, shared=True):
        assert time.monotonic() - t0 < 2  # no wait for the other build (it holds on for 30 s)


def test_up_waits_for_a_running_build_and_says_so(tmp_path, build_running):
    waited: list[str] = []
    with pytest.raises(LockTimeout) as err, lock.hold(tmp_path, timeout=0.5, on_wait=waited.append):
        pass
    assert "one or more builds" in err.value.message
    assert "wait for running builds" in (err.value.hint or "")
    assert waited


def test_a_build_waits_for_a_running_up(tmp_path):
    proc = _holder(tmp_path, 30, "exclusive")
    try:
        with pytest.raises(LockTimeout) as err, lock.hold(tmp_path, timeout=0.5, shared=True):
            pass
        assert f"(pid {proc.pid})" in err.value.message
    finally:
        proc.kill()
        proc.wait()


def test_up_gets_it_once_the_build_ends(tmp_path):
    proc = _holder(tmp_path, 0.5, "shared")
    with lock.hold(tmp_path, timeout=10):
        pass
    proc.wait()


TRY = """
import sys
from pathlib import Path
from buildkit_farm.errors import LockTimeout
from buildkit_farm.reconcile import lock
try:
    with lock.hold(Path(sys.argv[1]), timeout=0.3, shared=True):
        print("got")
except LockTimeout:
    print("waited")
"""


def _another_build(tmp_path) -> str:
    out = subprocess.run([sys.executable, "-c", TRY, str(tmp_path)], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def test_reentrant_in_one_process_and_upgrades_for_an_inner_exclusive_hold(tmp_path):
    with lock.hold(tmp_path, timeout=1, shared=True):
        with lock.hold(tmp_path, timeout=1, shared=True):
            assert _another_build(tmp_path) == "got"  # a nested shared hold did not wait for itself
        with lock.hold(tmp_path, timeout=1):  # `farm build --up`: converging inside the build's hold
            assert _another_build(tmp_path) == "waited"
        assert _another_build(tmp_path) == "got"  # shared again
    with lock.hold(tmp_path, timeout=1):  # and released: an exclusive hold gets it at once
        pass
