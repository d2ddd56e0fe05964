"""`farm inspect` input checks that need no registry: they fail before any call (exit 2)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _farm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    code = "import sys; from buildkit_farm.cli import main; sys.argv = ['farm', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("ref", ["127.0.0.1:5000/Base:latest", "http://127.0.0.1:5000/base"])
def test_a_malformed_reference_exits_2_with_a_hint(ref):
    result = _farm("inspect", ref)
    assert result.returncode == 2
    assert f'invalid image reference "{ref}"' in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_ca_file_exits_2(tmp_path):
    result = _farm("inspect", "127.0.0.1:5443/base:latest", "--ca", str(tmp_path / "none.pem"))
    assert result.returncode == 2
    assert "none.pem does not exist" in result.stderr
