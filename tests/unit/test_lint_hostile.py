"""`farm lint` on hostile input: no traceback, no hang, bounded time and memory, nothing echoed raw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit_farm.errors import UsageError
from buildkit_farm.lint.dockerfile import parse
from buildkit_farm.lint.files import MAX_BYTES, Subject, read_dockerfile, subjects_for_paths
from buildkit_farm.lint.findings import shown
from buildkit_farm.lint.report import render_text
from buildkit_farm.lint.rules import lint_subjects, lint_text

ROOT = Path(__file__).resolve().parents[2]

# Each input is generated in a fresh process, which prints its CPU seconds and peak memory (MB).
_GENERATORS = {
    "a 100k-line continued RUN": (
        '"FROM alpine\\nARG TARGETARCH\\nRUN set -eux \\\\\\n" + "".join(f"    && echo step {i} \\\\\\n"'
        ' for i in range(100_000)) + "    && wget -q https://dl.example.org/tool-$TARGETARCH.tgz\\n"'
    ),
    "a 25k-line RUN of downloads (2 MB)": (
        '"FROM alpine\\nARG TARGETARCH\\nRUN set -eux \\\\\\n" + "".join(f"    && wget -q https://dl.example.org/'
        'v{i}/tool-$TARGETARCH.tgz -O /tmp/t{i}.tgz \\\\\\n" for i in range(25_000)) + "    && echo done\\n"'
    ),
    "a 100k-line package list": (
        '"FROM alpine\\nRUN apk add --no-cache \\\\\\n"'
        ' + "".join(f"    package-{i}-dev \\\\\\n" for i in range(100_000)) + "    && echo done\\n"'
    ),
    "an unterminated heredoc of 100k lines": '"FROM alpine\\nRUN <<EOF\\n" + "echo line amd64 %PATH%\\n" * 100_000',
    "5k ARG + 5k FROM": (
        '"".join(f"ARG A{i}=v{i}\\n" for i in range(5000)) + "FROM alpine AS s0\\n"'
        ' + "".join(f"FROM s{i} AS s{i + 1}\\nCOPY --from=s0 /a /b\\n" for i in range(5000))'
    ),
    "5k ARG + 5k pinned FROM": (
        '"".join(f"ARG A{i}=amd64\\n" for i in range(5000))'
        ' + "".join(f"FROM --platform=linux/amd64 alpine AS s{i}\\nRUN apk add x\\n" for i in range(5000))'
        ' + "FROM alpine\\n" + "".join(f"COPY --from=s{i} /a /b\\n" for i in range(5000))'
    ),
    "a 1 MB word": '"FROM alpine\\nRUN " + "a" * 1_000_000 + "\\n"',
    "a 1 MB line of separators and quotes": '"FROM alpine\\nRUN " + "echo \'%A%\' && " * 80_000 + "\\n"',
    "100k case words without esac": '"FROM alpine\\nARG TARGETARCH\\nRUN " + "case $TARGETARCH in " * 50_000 + "\\n"',
}
_PROBE = """
import resource, sys, time
from buildkit_farm.lint.rules import lint_text
text = {expr}
start = time.process_time()
findings = lint_text(text, platforms=["linux/amd64", "linux/arm64"])
seconds = time.process_time() - start
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(text))
"""


@pytest.mark.parametrize("name", list(_GENERATORS))
def test_lint_is_linear_on_huge_generated_input(name):
    code = _PROBE.format(expr=_GENERATORS[name])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    seconds, megabytes, size = (float(x) for x in done.stdout.split())
    assert size > 250_000  # the input really is big
    assert seconds < 2.0, f"{name}: {seconds:.2f} s of CPU"
    assert megabytes < 300, f"{name}: {megabytes:.0f} MB"


def test_a_deeply_nested_json_cmd_is_not_a_traceback():
    text = "FROM alpine\nCMD " + "[" * 100_000 + "]" * 100_000 + "\n"
    assert parse(text).instructions[1].exec_form is None  # read as the shell form, as BuildKit does
    lint_text(text)  # no RecursionError


def test_a_fifo_in_a_folder_is_skipped_with_a_note(tmp_path):
    os.mkfifo(tmp_path / "Dockerfile")
    (tmp_path / "Dockerfile.linux-arm64").write_text("FROM amd64/alpine\n")
    report = lint_subjects(subjects_for_paths([str(tmp_path)]), display=str)  # must not block
    assert [f.rule for f in report.findings] == ["from-platform-mismatch"]
    assert len(report.notes) == 1 and "not a regular file (a FIFO)" in report.notes[0]
    assert "skipped" in render_text(report)


def test_a_fifo_given_as_a_path_is_bad_input(tmp_path):
    os.mkfifo(tmp_path / "Dockerfile")
    result = subprocess.run(
        [sys.executable, "-c", "from buildkit_farm.cli import main; main()", "lint", str(tmp_path / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "not a regular file" in result.stderr and "Traceback" not in result.stderr


def test_a_file_over_the_cap_is_refused_with_a_clear_message(tmp_path):
    big = tmp_path / "Dockerfile"
    big.write_bytes(b"FROM alpine\n" + b"#" * MAX_BYTES)
    with pytest.raises(UsageError, match="over 1024 KiB"):
        read_dockerfile(big)
    report = lint_subjects([Subject(big, found=True)], display=str)
    assert report.findings == () and "over 1024 KiB" in report.notes[0]


def test_an_unreadable_path_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from buildkit_farm.cli import main; main()", "lint", "/dev/null"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "not a regular file (a device)" in result.stderr


_DOCKERFILE = "FROM alpine:3.20\nARG TARGETARCH\nRUN wget -q https://dl.example.org/tool-$TARGETARCH.tgz\n"
# A Dockerfile's bytes as editors and shells write them: BuildKit reads UTF-8 only, so lint
# names the encoding (and how to convert it) rather than reporting garbled instructions.
_FOREIGN = {
    "utf16_le_bom": (_DOCKERFILE.encode("utf-16"), "is UTF-16 LE text (with a byte order mark)", "iconv -f UTF-16 "),
    "utf16_be": (_DOCKERFILE.encode("utf-16-be"), "is UTF-16 BE text (without a byte order mark)", "UTF-16BE"),
    "utf32_le_bom": (_DOCKERFILE.encode("utf-32"), "is UTF-32 LE text (with a byte order mark)", "iconv -f UTF-32 "),
    "gzip": (b"\x1f\x8b\x08\x00" + bytes(30), "is not text: it looks like a gzip archive", "right file"),
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(30), "is not text: it looks like a PNG image", "right file"),
}


@pytest.mark.parametrize("name", _FOREIGN)
def test_a_dockerfile_in_another_encoding_is_bad_input_named_with_its_fix(tmp_path, name):
    data, message, hint = _FOREIGN[name]
    file = tmp_path / "Dockerfile"
    file.write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-c", "from buildkit_farm.cli import main; main()", "lint", str(file)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())
    assert f"{file} {message}" in said and hint in said


@pytest.mark.parametrize("name", _FOREIGN)
def test_a_dockerfile_in_another_encoding_in_a_folder_is_skipped_with_a_note(tmp_path, name):
    data, message, _ = _FOREIGN[name]
    (tmp_path / "Dockerfile.windows").write_bytes(data)
    (tmp_path / "Dockerfile").write_text(_DOCKERFILE)
    report = lint_subjects(subjects_for_paths([str(tmp_path)]), display=str)
    assert report.findings == ()
    assert len(report.notes) == 1 and message in report.notes[0] and "skipped" in render_text(report)


def test_a_utf8_bom_or_a_latin1_comment_lints_like_plain_utf8(tmp_path):
    # BuildKit drops a UTF-8 BOM and passes other bytes through: a Latin-1 comment is no error.
    def lint(data: bytes) -> list[tuple[str, int]]:
        file = tmp_path / "Dockerfile"
        file.write_bytes(data)
        return [(f.rule, f.line) for f in lint_text(read_dockerfile(file), platforms=["linux/amd64", "linux/arm64"])]

    plain = lint(_DOCKERFILE.encode())
    assert lint(b"\xef\xbb\xbf" + _DOCKERFILE.encode()) == plain
    assert lint(_DOCKERFILE.encode() + b"# caf\xe9\n") == plain


_NASTY = "\x1b[2J\x1b]0;pwned\x07\u202egnp.exe\x9b31m"


def test_an_unknown_instruction_prints_only_the_word_escaped():
    secret = "password=hunter2 " * 20
    findings = lint_text(f"FROM alpine\nFROB{_NASTY} {secret}\n")
    (finding,) = [f for f in findings if f.rule == "dockerfile-syntax"]
    text = finding.render()
    assert "hunter2" not in text  # never the rest of the line
    assert not any(ch in text for ch in "\x1b\x07\u202e\x9b")
    assert "\\x1b" in text and "\\u202e" in text


def test_nothing_printed_from_a_dockerfile_carries_control_characters(tmp_path):
    path = tmp_path / f"Dockerfile-{_NASTY}"
    path.write_text(
        f"FROM amd64/alp{_NASTY}ine:1\nRUN echo %PATH{_NASTY}% C:\\{_NASTY}\nFROM img AS a b c {_NASTY}\n"
        f'RUN cmd /S /C dir{_NASTY}\nCMD ["{_NASTY}.exe"]\n'
    )
    report = lint_subjects(subjects_for_paths([str(tmp_path)]), display=str)
    assert report.findings
    text = render_text(report) + json.dumps(report.to_dict(str))
    for forbidden in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert forbidden not in text


def test_shown_escapes_every_dangerous_class():
    assert shown("a\x1b[31mb") == "a\\x1b[31mb"
    assert shown("\u202e\u2066\u200b") == "\\u202e\\u2066\\u200b"
    assert shown("\x85 \x7f") == "\\x85 \\x7f"
    assert shown("plain é ü 中") == "plain é ü 中"
