"""The lock: two `farm` runs against one Docker config never interleave.

An fcntl lock on `<docker config>/buildkit-farm/lock`. The kernel drops it when its holder
dies, so a killed `farm up` never leaves a stale lock behind. The holder writes its pid
into the file, so a waiting run can say whom it waits for.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from buildkit_farm.errors import LockTimeout

DEFAULT_TIMEOUT = 300.0


@contextmanager
def hold(
    directory: Path, *, timeout: float = DEFAULT_TIMEOUT, on_wait: Callable[[str], None] | None = None
) -> Iterator[Path]:
    """Hold the farm lock in `directory`; wait up to `timeout` seconds for another holder."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another farm run{holder} still holds {path} after {timeout:g}s",
                        hint="wait for it to finish and rerun, or give more time with --lock-timeout",
                    ) from None
                if not told and on_wait is not None:
                    on_wait(f"waiting for another farm run{holder} (lock {path}, up to {timeout:g}s)...")
                    told = True
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing drops the flock


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
