"""Every invalid farm file in config_cases/ is refused with the expected key path and message.

Each case names what it expects in its first lines:
    # expect-path: node "node2".platforms[0]
    # expect-message: unknown platform "armv9"
    # via: cli            (optional: also run through the real `farm validate`, exit code 2)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit_farm.errors import ConfigError
from buildkit_farm.farmfile.load import load_config

CASES = Path(__file__).parent / "config_cases"
CASE_FILES = sorted(CASES.glob("*.toml"))


def expectations(case: Path) -> dict[str, str]:
    found = {}
    for line in case.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        found[key] = value
    return found


def test_there_are_at_least_forty_cases():
    assert len(CASE_FILES) >= 40


@pytest.mark.parametrize("case", CASE_FILES, ids=lambda path: path.stem)
def test_case_is_refused_with_its_path_and_message(case: Path):
    expected = expectations(case)
    with pytest.raises(ConfigError) as caught:
        load_config(case)
    err = caught.value
    assert err.exit_code == 2
    matches = [i for i in err.issues if i.path == expected["expect-path"] and expected["expect-message"] in i.message]
    assert matches, f"no issue {expected} in:\n{err.message}"
    # the rendered line is what the user reads: FILE: key.path: message (hint)
    rendered = matches[0].render(str(case))
    assert rendered.startswith(str(case))
    assert expected["expect-message"] in rendered
    if expected["expect-path"]:
        assert f": {expected['expect-path']}: " in rendered


CLI_CASES = [case for case in CASE_FILES if expectations(case).get("via") == "cli"]


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda path: path.stem)
def test_case_through_the_real_cli_exits_2(case: Path):
    expected = expectations(case)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("FARM_FILE", None)
    done = subprocess.run(
        [sys.executable, "-c", "from buildkit_farm.cli import main; main()", "validate", "-f", str(case)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line.removeprefix("error: ") for line in done.stderr.splitlines()]
    prefix = f"{case}: {expected['expect-path']}: " if expected["expect-path"] else f"{case}"
    assert any(line.startswith(prefix) and expected["expect-message"] in line for line in lines), done.stderr


def test_cli_cases_cover_several_kinds():
    assert len(CLI_CASES) >= 10
