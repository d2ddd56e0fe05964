"""How the benches run farm: as it runs installed, its modules' bytecode cached."""

from __future__ import annotations

import os


def environment(**extra: str) -> dict[str, str]:
    """This process's environment for timed farm runs, with `extra` set.

    As installed, Python caches compiled modules (.pyc); a session that sets
    PYTHONDONTWRITEBYTECODE would time the compiler on every run. A warm-up run writes them.
    """
    return {**{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}, **extra}
