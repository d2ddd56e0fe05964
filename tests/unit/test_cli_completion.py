"""Shell completion: `farm --install-completion` exists, and the completer answers as bash asks it."""

from __future__ import annotations

import os
import subprocess
import sys

FARM = [sys.executable, "-m", "buildkit_farm"]


def complete(words: str) -> list[str]:
    env = {
        **os.environ,
        "_FARM_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    out = subprocess.run(FARM, env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_help_offers_completion_install():
    out = subprocess.run([*FARM, "--help"], capture_output=True, text=True, check=True).stdout
    assert "--install-completion" in out and "--show-completion" in out


def test_commands_and_options_complete():
    assert complete("farm va") == ["validate"]
    assert set(complete("farm build --verify")) == {"--verify-run", "--verify-cmd"}
