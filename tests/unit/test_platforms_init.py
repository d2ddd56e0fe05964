"""`farm init`'s platform: what the engine or `uname -m` reports, and a said guess when it is unknown."""

from __future__ import annotations

import pytest

from buildkit_farm.farmfile import starter
from buildkit_farm.farmfile.load import load_config


@pytest.mark.parametrize(
    ("machine", "platform"),
    [("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"), ("armv8l", "linux/arm/v7"), ("armv7l", "linux/arm/v7")],
)
def test_known_machines_are_pinned_without_a_note(machine, platform):
    engine = starter.engine_for("unix:///var/run/docker.sock", machine, "linux", "machine")
    assert (engine.platform, engine.source, engine.note) == (platform, "machine", "")


def test_the_engine_answer_comes_from_the_caller_and_no_answer_means_this_machine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://engine:2376")
    monkeypatch.setattr(starter.host, "machine", lambda: "aarch64")
    asked = starter.local_engine(("x86_64", "linux"))
    assert (asked.endpoint, asked.platform, asked.source) == ("tcp://engine:2376", "linux/amd64", "engine")
    silent = starter.local_engine(None)
    assert (silent.platform, silent.source) == ("linux/arm64", "machine")


def test_farm_init_asks_the_engine_through_the_door(tmp_path, fake_docker, monkeypatch):
    from typer.testing import CliRunner

    from buildkit_farm.cli import app

    fake_docker.on("system", "info", stdout='{"Architecture": "aarch64", "OSType": "linux"}')
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["init", "--json"])
    assert done.exit_code == 0, done.output
    assert '"platform": "linux/arm64"' in done.output and '"detected_from": "engine"' in done.output
    assert fake_docker.calls == [["system", "info", "--format", "{{json .}}"]]


def test_armv8l_is_not_pinned_to_amd64():
    # A 32-bit userland on a 64-bit ARM kernel runs arm/v7 images.
    engine = starter.engine_for("unix:///var/run/docker.sock", "armv8l", "linux", "engine")
    assert engine.platform == "linux/arm/v7"


def test_an_unknown_machine_says_what_was_guessed_and_how_to_change_it(tmp_path):
    engine = starter.engine_for("unix:///var/run/docker.sock", "sun4v", "linux", "machine")
    assert engine.platform == "linux/amd64" and engine.source == "guess"
    assert '"sun4v"' in engine.note and "guessed linux/amd64" in engine.note and "platforms" in engine.note
    text = starter.starter_text(engine, with_target=False)
    assert "GUESS" in text
    (tmp_path / "multiarch.toml").write_text(text)
    assert [n.platforms for n in load_config(tmp_path / "multiarch.toml").nodes] == [("linux/amd64",)]


def _init_on(machine: str, folder):
    import json
    import os
    import subprocess
    import sys

    code = f"import platform; platform.machine = lambda: {machine!r}; from buildkit_farm.cli import main; main()"
    env = {**os.environ, "DOCKER_HOST": f"unix://{folder}/no-engine.sock"}  # no engine: uname -m decides
    done = subprocess.run(
        [sys.executable, "-c", code, "init", "--json"], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["result"]


def test_farm_init_on_armv8l_pins_arm_v7(tmp_path):
    written = _init_on("armv8l", tmp_path)
    assert (written["platform"], written["detected_from"]) == ("linux/arm/v7", "machine")
    assert "note" not in written


def test_farm_init_on_an_unknown_machine_says_it_guessed(tmp_path):
    written = _init_on("sun4v", tmp_path)
    assert (written["platform"], written["detected_from"]) == ("linux/amd64", "guess")
    assert '"sun4v"' in written["note"] and "change the node's `platforms`" in written["note"]
