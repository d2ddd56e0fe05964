"""The lock: a reader-writer lock per Docker config, so builds share and `up`/`down` exclude.

An fcntl lock on `<docker config>/buildkit-farm/lock`: `farm up` and `farm down` hold it
exclusively (they change the builder); `farm build` holds it shared for the whole build
(`shared=True`), so any number of builds run at once while none can see its builder change
under it. The kernel drops a lock when its holder dies, so a killed run never leaves a
stale lock behind. An exclusive holder writes its pid into the file, so a waiting run can
say whom it waits for.

Within one process the lock is reentrant: a `hold` inside a `hold` of the same directory
reuses the open file. An exclusive hold inside a shared one (`farm build --up` converging
first) converts the lock, and converts it back to shared when the inner hold ends.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from buildkit_farm.errors import LockTimeout

# Longer than a node lock's life (holds.DEFAULT_TTL, 600 s) and than a holder's wait for its
# running builds (--wait-timeout, 300 s): a waiting runner outlasts a runner killed on another
# machine and takes its lock over, instead of giving up just before it could.
DEFAULT_TIMEOUT = 660.0


@dataclass
class _Held:
    fd: int
    shared: bool


_HELD: dict[Path, _Held] = {}  # this process's locks, by their file


@contextmanager
def hold(
    directory: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_wait: Callable[[str], None] | None = None,
    shared: bool = False,
) -> Iterator[Path]:
    """Hold the farm lock in `directory` (shared or exclusive); wait up to `timeout` seconds."""
    directory.mkdir(parents=True, exist_ok=True)
    path = (directory / "lock").absolute()
    outer = _HELD.get(path)
    if outer is not None:
        if outer.shared and not shared:  # upgrade for the inner block, then back
            _acquire(outer.fd, path, shared=False, timeout=timeout, on_wait=on_wait)
            outer.shared = False
            try:
                yield path
            finally:
                _acquire(outer.fd, path, shared=True, timeout=timeout, on_wait=on_wait)
                outer.shared = True
        else:
            yield path  # already held at least as strongly
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(fd, path, shared=shared, timeout=timeout, on_wait=on_wait)
        _HELD[path] = _Held(fd, shared)
        yield path
    finally:
        _HELD.pop(path, None)
        os.close(fd)  # closing drops the flock


def _acquire(fd: int, path: Path, *, shared: bool, timeout: float, on_wait: Callable[[str], None] | None) -> None:
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = _holder(path) or ("" if shared else " (one or more builds)")
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"another farm run{holder} still holds {path} after {timeout:g}s",
                    hint="wait for it to finish and rerun, or give more time with --lock-timeout"
                    + ("" if shared else " (`farm up` and `farm down` wait for running builds)"),
                ) from None
            if not told and on_wait is not None:
                on_wait(f"waiting for another farm run{holder} (lock {path}, up to {timeout:g}s)...")
                told = True
            time.sleep(0.1)
    os.ftruncate(fd, 0)  # a shared holder leaves it empty: no one pid to name
    if not shared:
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
