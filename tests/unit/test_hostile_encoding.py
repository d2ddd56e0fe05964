"""Farm files as bytes that editors, shells and wrong paths really produce (a BOM, UTF-16 and
UTF-32 with and without a BOM, Windows-1252, CRLF, a raw NUL, an archive or an image) and long
values that once made a credential pattern quadratic: each one is refused with what it is and
what to fix, or read as what it says, in bounded time and never with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from buildkit_farm.errors import ConfigError
from buildkit_farm.farmfile.load import load_config, load_config_text

FARM = (
    '[builder]\nname = "farm"\n[[node]]\nname = "node1"\nendpoint = "unix:///var/run/docker.sock"\n'
    'platforms = ["linux/amd64"]\n[[node]]\nname = "node2"\nendpoint = "ssh://farm@127.0.0.1:2222"\n'
    'platforms = ["aarch64"]\n'
)

# (file bytes, the line of the issue or None, what the message says, what the hint says)
REFUSED = {
    "utf8_two_boms": (b"\xef\xbb\xbf\xef\xbb\xbf" + FARM.encode(), 1, "starts with two byte order marks", "UTF-8"),
    "utf8_bom_inside": (
        FARM.encode() + b"\xef\xbb\xbf" + FARM.split("[[node]]")[1].join(["[[node]]", ""]).encode(),
        11,
        "a byte order mark (U+FEFF) starts line 11: files joined together?",
        "remove it",
    ),
    "utf16_le_with_bom": (
        FARM.encode("utf-16-le").join([b"\xff\xfe", b""]),
        None,
        "is UTF-16 LE text (with a byte order mark)",
        "iconv -f UTF-16 -t UTF-8",
    ),
    "utf16_be_with_bom": (
        FARM.encode("utf-16-be").join([b"\xfe\xff", b""]),
        None,
        "is UTF-16 BE text (with a byte order mark)",
        "iconv -f UTF-16 -t UTF-8",
    ),
    "utf16_le_without_bom": (
        FARM.encode("utf-16-le"),
        None,
        "is UTF-16 LE text (without a byte order mark)",
        "iconv -f UTF-16LE -t UTF-8",
    ),
    "utf16_be_without_bom": (
        FARM.encode("utf-16-be"),
        None,
        "is UTF-16 BE text (without a byte order mark)",
        "iconv -f UTF-16BE -t UTF-8",
    ),
    "utf16_le_powershell": (
        (FARM + "# café ☕\n").encode("utf-16"),
        None,
        "is UTF-16 LE text",
        "Out-File -Encoding utf8",
    ),
    "utf32_le_with_bom": (
        FARM.encode("utf-32-le").join([b"\xff\xfe\x00\x00", b""]),
        None,
        "is UTF-32 LE text (with a byte order mark)",
        "iconv -f UTF-32 -t UTF-8",
    ),
    "utf32_be_with_bom": (
        FARM.encode("utf-32-be").join([b"\x00\x00\xfe\xff", b""]),
        None,
        "is UTF-32 BE text (with a byte order mark)",
        "iconv -f UTF-32 -t UTF-8",
    ),
    "utf32_le_without_bom": (
        FARM.encode("utf-32-le"),
        None,
        "is UTF-32 LE text (without a byte order mark)",
        "iconv -f UTF-32LE",
    ),
    "utf32_be_without_bom": (
        FARM.encode("utf-32-be"),
        None,
        "is UTF-32 BE text (without a byte order mark)",
        "iconv -f UTF-32BE",
    ),
    "utf16_bom_only": (b"\xff\xfe", None, "is UTF-16 LE text", "save it as UTF-8"),
    "raw_nul_in_a_value": (
        FARM.replace('"farm"', '"fa\x00rm"').encode(),
        2,
        "contains a NUL byte at line 2",
        "right file",
    ),
    "raw_nul_after_the_end": (FARM.encode() + b"\n\x00", 12, "contains a NUL byte at line 12", "right file"),
    "latin1_comment": (
        FARM.encode() + b"# caf\xe9\n",
        11,
        "byte 0xE9 at line 11, column 6",
        "iconv -f WINDOWS-1252 -t UTF-8",
    ),
    "cp1252_quote": (
        FARM.replace('"farm"', '"\x93farm\x94"').encode("latin-1"),
        2,
        "byte 0x93 at line 2, column 9",
        "WINDOWS-1252",
    ),
    "overlong_utf8": (
        FARM.replace("farm", "f\xc0\xafrm").encode("latin-1"),
        2,
        "is not UTF-8 text: byte 0xC0",
        "save it as UTF-8",
    ),
    "gzip": (b"\x1f\x8b\x08\x00" + bytes(40), None, "it looks like a gzip archive", "right file"),
    "zip": (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(30), None, "it looks like a zip archive", "right file"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20), None, "it looks like a PNG image", "right file"),
    "jpeg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20), None, "it looks like a JPEG image", "right file"),
    "elf": (b"\x7fELF\x02\x01\x01\x00" + bytes(40), None, "it looks like an ELF executable", "right file"),
    "tar": (
        b"multiarch.toml".ljust(257, b"\x00") + b"ustar\x0000" + bytes(240),
        None,
        "it looks like a tar archive",
        "right file",
    ),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", None, "it looks like a PDF document", "right file"),
    "random_bytes": (bytes(range(128, 256)) + bytes(range(0, 128)), 1, "is not text: binary data", "right file"),
    "json": (b'{"builder": {"name": "farm"}}\n', 1, "TOML syntax error", None),
}


@pytest.mark.parametrize("name", REFUSED)
def test_an_encoding_problem_is_named_with_its_fix(tmp_path: Path, name: str):
    data, line, message, hint = REFUSED[name]
    file = tmp_path / "multiarch.toml"
    file.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert caught.value.exit_code == 2
    issue = caught.value.issues[0]
    assert message in issue.message
    assert hint is None or hint in (issue.hint or "")
    assert issue.line == line
    assert str(caught.value).startswith(str(file))
    assert file.read_bytes() == data


# A UTF-8 BOM says "UTF-8" (TOML 1.0 allows one; Rust's and Go's TOML parsers skip it; editors
# on Windows write one): the file reads as without it.
ACCEPTED = {
    "utf8_bom": b"\xef\xbb\xbf" + FARM.encode(),
    "utf8_bom_crlf": b"\xef\xbb\xbf" + FARM.replace("\n", "\r\n").encode(),
    "utf8_bom_then_comment": b"\xef\xbb\xbf# the farm\n" + FARM.encode(),
    "bom_inside_a_string": FARM.replace('"farm"', '"farm"\n# \ufeff in a comment').encode(),
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_a_utf8_bom_reads_as_the_same_file(tmp_path: Path, name: str):
    file, plain = tmp_path / "bom.toml", tmp_path / "plain.toml"
    file.write_bytes(ACCEPTED[name])
    plain.write_text(FARM)
    assert load_config(file).model_dump(exclude={"file"}) == load_config(plain).model_dump(exclude={"file"})


def test_text_given_with_a_bom_reads_as_the_same_file():
    assert load_config_text("\ufeff" + FARM).model_dump() == load_config_text(FARM).model_dump()


@pytest.mark.parametrize("kind", ["utf16", "gzip", "latin1"])
def test_a_buildkitd_config_in_another_encoding_is_named_at_its_key(tmp_path: Path, kind: str):
    data = {
        "utf16": "[registry]\n".encode("utf-16"),
        "gzip": b"\x1f\x8b\x08\x00" + bytes(20),
        "latin1": b"# caf\xe9\n",
    }[kind]
    (tmp_path / "buildkitd.toml").write_bytes(data)
    file = tmp_path / "multiarch.toml"
    file.write_text(FARM.replace('name = "farm"', 'name = "farm"\nbuildkitd_config = "buildkitd.toml"'))
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    message = {"utf16": "is UTF-16 LE text", "gzip": "looks like a gzip archive", "latin1": "byte 0xE9 at line 1"}
    assert any(
        issue.path == "builder.buildkitd_config" and message[kind] in issue.message for issue in caught.value.issues
    ), str(caught.value)


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


def _validate(file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "buildkit_farm", "validate", "-f", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_the_real_cli_reads_a_bom_file_like_a_plain_one(tmp_path: Path):
    file = tmp_path / "multiarch.toml"
    file.write_bytes(b"\xef\xbb\xbf" + FARM.encode())
    done = _validate(file)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "name", ["utf16_le_with_bom", "utf16_be_without_bom", "utf32_le_with_bom", "gzip", "latin1_comment"]
)
def test_the_real_cli_names_the_encoding_and_exits_2(tmp_path: Path, name: str):
    data, line, message, hint = REFUSED[name]
    file = tmp_path / "multiarch.toml"
    file.write_bytes(data)
    done = _validate(file)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    said = " ".join(done.stderr.split())
    assert f"{file}{f':{line}' if line else ''}: " in said
    assert message in said and hint in said
    assert file.read_bytes() == data
