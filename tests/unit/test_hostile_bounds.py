"""Bounded cost: the issue's oversized and endless inputs exit 2 through the real `farm
validate` quickly, in little memory (each checked in a process of its own)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from buildkit_farm.errors import ConfigError
from buildkit_farm.farmfile.load import load_config

HEAD = '[builder]\nname = "farm"\n[[node]]\nname = "node1"\nendpoint = "unix:///var/run/docker.sock"\n'
SECONDS = 2.0  # the issue's bound, for the check itself (load_config, in this process)
PROCESS_SECONDS = 10.0  # the whole `farm validate` process: no hang, even on a loaded 2-core machine
MEGABYTES = 300

CASES = {
    "unknown_keys_10mb": lambda: "".join(f"key{i} = {i}\n" for i in range(800_000)),
    "dotted_key_40kb": lambda: HEAD + "a" + ".a" * 20_000 + " = 1\n",
    "dotted_table_header": lambda: HEAD + "[target" + ".x" * 5_000 + "]\n",
    "million_item_array": lambda: HEAD + "platforms = [" + ",".join(["1"] * 1_000_000) + "]\n",
    "array_just_under_the_size_cap": lambda: HEAD + "platforms = [" + ",".join(["1"] * 19_000) + "]\n",
    "ten_thousand_targets": lambda: HEAD + "".join(f'[[target]]\nname = "t{i}"\n' for i in range(10_000)),
    "long_key": lambda: HEAD + "[[target]]\n" + "k" * 200_000 + " = 1\n",
    "deep_inline_tables": lambda: HEAD + "x = " + "{a = " * 3_000 + "1" + "}" * 3_000 + "\n",
    "deep_arrays": lambda: HEAD + "x = " + "[" * 50_000 + "]" * 50_000 + "\n",
}


def _validate(file: str, timeout: float = 20) -> tuple[subprocess.CompletedProcess[str], float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "buildkit_farm", "validate", "-f", file],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
    )
    seconds = time.monotonic() - t0
    peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return proc, seconds, peak_mb


@pytest.mark.parametrize("name", CASES)
def test_oversized_input_exits_2_fast_and_small(tmp_path: Path, name: str):
    file = tmp_path / "multiarch.toml"
    file.write_text(CASES[name]())
    t0 = time.monotonic()
    with pytest.raises(ConfigError):
        load_config(file)
    assert time.monotonic() - t0 < SECONDS, f"{name}: {time.monotonic() - t0:.2f} s"
    proc, seconds, peak_mb = _validate(str(file))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") <= 60  # a capped list of issues, not one per key
    assert seconds < PROCESS_SECONDS, f"{name}: {seconds:.2f} s"
    assert peak_mb < MEGABYTES, f"{name}: {peak_mb:.0f} MB"


def test_dev_zero_and_a_fifo_exit_2_without_hanging(tmp_path: Path):
    fifo = tmp_path / "farm.fifo"
    os.mkfifo(fifo)
    for file, kind in (("/dev/zero", "a character device"), (str(fifo), "a FIFO")):
        t0 = time.monotonic()
        with pytest.raises(ConfigError):
            load_config(file)
        assert time.monotonic() - t0 < SECONDS
        proc, seconds, _ = _validate(file, timeout=20)
        assert proc.returncode == 2 and f"is not a regular file ({kind})" in proc.stderr
        assert seconds < PROCESS_SECONDS


@pytest.mark.parametrize("command", ["up", "plan", "down"])
def test_commands_that_prefetch_refuse_a_fifo_and_deep_nesting(tmp_path: Path, command: str):
    # `farm up` reads the file ahead of load_config (to start its inspects early): that read
    # is bounded too, and never parses what load_config will refuse.
    fifo = tmp_path / "farm.fifo"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.toml"
    deep.write_text(HEAD + "x = " + "[" * 5_000 + "]" * 5_000 + "\n")
    for file in (fifo, deep):
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "buildkit_farm", command, "-f", str(file), "--docker-config", str(tmp_path / "dc")],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert proc.returncode == 2, proc.stderr[-1000:]
        assert "Traceback" not in proc.stderr and time.monotonic() - t0 < PROCESS_SECONDS


@pytest.mark.parametrize("what", ["device", "huge"])
def test_a_buildkitd_config_is_read_bounded_too(tmp_path: Path, what: str):
    if what == "huge":
        (tmp_path / "buildkitd.toml").write_text("# filler\n" * 100_000)
        config = "buildkitd.toml"
    else:
        config = "/dev/zero"
    file = tmp_path / "multiarch.toml"
    file.write_text(HEAD.replace('name = "farm"\n', f'name = "farm"\nbuildkitd_config = "{config}"\n', 1))
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert time.monotonic() - t0 < SECONDS
    [issue] = [i for i in caught.value.issues if i.path == "builder.buildkitd_config"]
    assert ("is not a regular file" if what == "device" else "over the 256 KiB") in issue.message
