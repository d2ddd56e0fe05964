"""The build's threads: work beside the build at a lower CPU priority, log lines held at a
gate, and an echo that many threads can share."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from buildkit_farm.builds.run import Echo

T = TypeVar("T")


def background(fn: Callable[..., T], *args: object, daemon: bool = False, **kwargs: object) -> Future[T]:
    """`fn` in a thread of its own at a lower CPU priority, inherited by the processes it starts.

    farm's own work beside a running build (observing the nodes, over ssh for some;
    loading the modules needed after it) then takes only the CPU the build leaves: on a
    small machine it otherwise slows the build it runs beside. Linux sets priorities per
    thread; elsewhere the thread runs at the normal priority.
    """
    future: Future[T] = Future()

    def run() -> None:
        try:
            me = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + _BACKGROUND_NICE))
        except (OSError, AttributeError):
            pass
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:
            future.set_exception(err)

    threading.Thread(target=run, daemon=daemon, name=f"farm-background-{fn.__name__}").start()
    return future


_BACKGROUND_NICE = 10


class Gate:
    """Holds log lines back until `open` (then shows them, and the rest as they come) or `discard`."""

    def __init__(self, echo: Echo) -> None:
        self._echo, self._open, self._lock = echo, False, threading.Lock()
        self._held: list[str] | None = []

    def echo(self, line: str) -> None:
        with self._lock:
            if self._open:
                self._echo(line)
            elif self._held is not None:
                self._held.append(line)

    def open(self) -> None:
        with self._lock:
            for line in self._held or ():
                self._echo(line)
            self._held, self._open = None, True

    def discard(self) -> None:
        with self._lock:
            self._held = None


def locked_echo(echo: Echo) -> Echo:
    """`echo` made safe for the targets' threads: whole lines, never interleaved mid-line."""
    lock = threading.Lock()

    def locked(line: str) -> None:
        with lock:
            echo(line)

    return locked
