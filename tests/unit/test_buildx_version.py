"""Which buildx farm runs (pure): `buildx version` parsed, the floor checked, bake's --allow flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit_farm import buildx_version
from buildkit_farm.builds.command import bake_allow, bake_command
from buildkit_farm.errors import BuildxUnsupported


@pytest.mark.parametrize(
    ("text", "shown", "number"),
    [
        ("github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3\n", "0.13.1+ds1", (0, 13, 1)),
        ("github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4\n", "0.29.1+ds1", (0, 29, 1)),
        ("github.com/docker/buildx v0.36.0 3b9f1e2\n", "0.36.0", (0, 36, 0)),
        ("github.com/docker/buildx v0.29.1-desktop.1 a1b2c3\n", "0.29.1-desktop.1", (0, 29, 1)),
        ("github.com/docker/buildx v0.0.0+unknown\n", "0.0.0+unknown", None),
    ],
)
def test_buildx_version_is_read_as_buildx_prints_it(text, shown, number):
    found = buildx_version.parse(text)
    assert found is not None and found.text == shown and found.number == number


def test_an_answer_that_is_not_buildx_is_no_version():
    assert buildx_version.parse("") is None
    assert buildx_version.parse("docker: 'buildx' is not a docker command.") is None


def test_below_the_floor_farm_stops_naming_the_version_found_and_needed():
    with pytest.raises(BuildxUnsupported) as caught:
        buildx_version.check(buildx_version.parse("github.com/docker/buildx v0.12.1 abc"))
    assert caught.value.exit_code == 2
    assert "buildx 0.12.1 is older than farm supports" in caught.value.message
    assert "0.13 or newer" in caught.value.message and "0.13.1 and 0.29.1" in (caught.value.hint or "")


def test_no_buildx_at_all_is_the_same_clear_error():
    with pytest.raises(BuildxUnsupported) as caught:
        buildx_version.check(None, detail="docker: 'buildx' is not a docker command.")
    assert "no buildx answers" in caught.value.message and "not a docker command" in caught.value.message


def test_supported_versions_pass_and_only_new_ones_want_bake_allow():
    old = buildx_version.check(buildx_version.parse("github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3"))
    new = buildx_version.check(buildx_version.parse("github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4"))
    assert not old.bake_needs_allow and new.bake_needs_allow
    source_build = buildx_version.check(buildx_version.parse("github.com/docker/buildx v0.0.0+unknown"))
    assert source_build.bake_needs_allow  # an undated build is taken as new


def test_bake_allow_names_every_local_path_of_the_generated_definition():
    definition = {
        "target": {
            "app": {
                "context": "/src/app",
                "dockerfile": "/src/docker/app.Dockerfile",
                "secret": ["id=npm,env=NPM_TOKEN", "id=key,src=/keys/key.txt"],
                "ssh": ["default=/keys/id_ed25519"],
                "cache-from": ["type=registry,ref=r/c", "type=local,src=/cache/in"],
                "cache-to": ["type=local,dest=/cache/out,mode=max"],
            },
            "tool": {"context": "/src/app", "dockerfile": "/src/app/Dockerfile"},
        }
    }
    assert bake_allow(definition) == [
        "--allow=fs.read=/cache/in",
        "--allow=fs.read=/keys/id_ed25519",
        "--allow=fs.read=/keys/key.txt",
        "--allow=fs.read=/src/app",
        "--allow=fs.read=/src/docker",
        "--allow=fs.write=/cache/out",
    ]


def test_bake_command_puts_the_allow_flags_before_the_file():
    argv = bake_command(
        Path("/tmp/x/bake.json"),
        builder="b",
        metadata_file=Path("/tmp/x/m.json"),
        progress="plain",
        allow=["--allow=fs.read=/src"],
    )
    assert argv[argv.index("bake") + 1] == "--allow=fs.read=/src" and "--file" in argv
