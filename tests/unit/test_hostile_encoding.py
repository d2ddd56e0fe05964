"""Farm files as bytes that editors and generators really produce (a BOM, UTF-16, CRLF, a raw
NUL) and long values that once made a credential pattern quadratic: each one is refused with
what to fix, or read as what it says, in bounded time and never with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from buildkit_farm.errors import ConfigError
from buildkit_farm.farmfile.load import load_config

FARM = (
    '[builder]\nname = "farm"\n[[node]]\nname = "node1"\nendpoint = "unix:///var/run/docker.sock"\n'
    'platforms = ["linux/amd64"]\n[[node]]\nname = "node2"\nendpoint = "ssh://farm@127.0.0.1:2222"\n'
    'platforms = ["aarch64"]\n'
)

# (file bytes, the line of the issue or None, what the message says)
REFUSED = {
    "utf8_bom": (b"\xef\xbb\xbf" + FARM.encode(), 1, "byte order mark"),
    "utf8_bom_only": (b"\xef\xbb\xbf", 1, "byte order mark"),
    "utf16_le_with_bom": (b"\xff\xfe" + FARM.encode("utf-16-le"), None, "is not UTF-8 text"),
    "utf16_be_without_bom": (FARM.encode("utf-16-be"), 1, "contains a NUL byte at line 1"),
    "raw_nul_in_a_value": (FARM.replace('"farm"', '"fa\x00rm"').encode(), 2, "contains a NUL byte at line 2"),
    "raw_nul_after_the_end": (FARM.encode() + b"\n\x00", 12, "contains a NUL byte at line 12"),
    "latin1_comment": (FARM.encode() + b"# caf\xe9\n", None, "is not UTF-8 text"),
    "overlong_utf8": (FARM.replace("farm", "f\xc0\xafrm").encode("latin-1"), None, "is not UTF-8 text"),
    "gzip": (b"\x1f\x8b\x08\x00" + bytes(40), None, "is not UTF-8 text"),
    "json": (b'{"builder": {"name": "farm"}}\n', 1, "TOML syntax error"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_an_encoding_problem_is_named_with_its_fix(tmp_path: Path, name: str):
    data, line, message = REFUSED[name]
    file = tmp_path / "multiarch.toml"
    file.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    issue = caught.value.issues[0]
    assert message in issue.message
    assert issue.line == line
    assert str(caught.value).startswith(str(file))


def test_crlf_line_ends_read_as_lf(tmp_path: Path):
    crlf, lf = tmp_path / "crlf.toml", tmp_path / "lf.toml"
    crlf.write_bytes(FARM.replace("\n", "\r\n").encode())
    lf.write_text(FARM)
    assert load_config(crlf).model_dump() == load_config(lf).model_dump()


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ('"farm"', '"fa\\u0000rm"', "builder.name", "contains a NUL character"),
        ('"aarch64"', '"aarch64\\u0000"', 'node "node2".platforms[0]', "contains a NUL character"),
        ("2222", "2222\\u0000", 'node "node2".endpoint', "contains a NUL character"),
        ('name = "node1"', 'name = "node1"\n"k\\u0000" = 1', 'node "node1"."k\\u0000"', "a key contains a NUL"),
    ],
)
def test_an_escaped_nul_anywhere_is_refused_at_its_key(tmp_path: Path, old, new, path, message):
    file = tmp_path / "multiarch.toml"
    file.write_text(FARM.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert any(issue.path == path and message in issue.message for issue in caught.value.issues), str(caught.value)


LONG = 200_000
SLOW_VALUES = {
    "ssh_host": ("127.0.0.1", "h" * LONG),
    "ssh_user": ("farm@", "u" * LONG + "@"),
    "scheme_like_run": ("ssh://farm@127.0.0.1:2222", "a" * LONG + "://x"),
    "many_schemes": ("ssh://farm@127.0.0.1:2222", "a://" * (LONG // 4)),
}


@pytest.mark.parametrize("name", SLOW_VALUES)
def test_a_long_value_is_checked_in_linear_time(tmp_path: Path, name: str):
    old, new = SLOW_VALUES[name]
    file = tmp_path / "multiarch.toml"
    file.write_text(FARM.replace(old, new, 1))
    t0 = time.monotonic()
    try:
        load_config(file)
    except ConfigError:
        pass
    assert time.monotonic() - t0 < 2.0


def test_the_real_cli_names_a_bom_and_exits_2(tmp_path: Path):
    file = tmp_path / "multiarch.toml"
    file.write_bytes(b"\xef\xbb\xbf" + FARM.encode())
    done = subprocess.run(
        [sys.executable, "-m", "buildkit_farm", "validate", "-f", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{file}:1: starts with a byte order mark" in done.stderr
    assert "without a BOM" in done.stderr
