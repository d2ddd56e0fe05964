"""The build's threads: background work runs at a lower priority (and so do the processes it
starts), its result or error comes back; the gate holds lines until it opens."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from buildkit_farm.builds.threads import Gate, background, locked_echo

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")


@linux
def test_background_work_and_its_processes_run_at_a_lower_priority():
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def probe() -> tuple[int, int]:
        own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        child = subprocess.run([sys.executable, "-c", "import os; print(os.nice(0))"], capture_output=True, text=True)
        return own, int(child.stdout)

    own, child = background(probe).result(timeout=30)
    assert own == min(19, mine + 10) and child == own
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the caller is untouched


def test_background_gives_back_the_result_or_the_error():
    assert background(lambda a, b=0: a + b, 2, b=3).result(timeout=10) == 5

    def fail() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        background(fail).result(timeout=10)


def test_the_gate_holds_lines_until_open_and_drops_them_on_discard():
    shown: list[str] = []
    gate = Gate(shown.append)
    gate.echo("a")
    assert shown == []
    gate.open()
    gate.echo("b")
    assert shown == ["a", "b"]

    dropped: list[str] = []
    other = Gate(dropped.append)
    other.echo("x")
    other.discard()
    other.echo("y")
    assert dropped == []


def test_locked_echo_keeps_every_line_whole():
    lines: list[str] = []
    echo = locked_echo(lines.append)
    threads = [threading.Thread(target=lambda n=n: [echo(f"{n}-{i}") for i in range(200)]) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(lines) == sorted(f"{n}-{i}" for n in range(4) for i in range(200))
