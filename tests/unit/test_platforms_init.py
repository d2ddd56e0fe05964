"""`farm init`'s platform: what the engine or `uname -m` reports, and a said guess when it is unknown."""

from __future__ import annotations

import pytest

from buildkit_farm.farmfile import starter
from buildkit_farm.farmfile.model import load_config


@pytest.mark.parametrize(
    ("machine", "platform"),
    [("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"), ("armv8l", "linux/arm/v7"), ("armv7l", "linux/arm/v7")],
)
def test_known_machines_are_pinned_without_a_note(machine, platform):
    engine = starter.engine_for("unix:///var/run/docker.sock", machine, "linux", "machine")
    assert (engine.platform, engine.source, engine.note) == (platform, "machine", "")


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
