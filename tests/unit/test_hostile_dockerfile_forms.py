"""`farm lint` reads the Dockerfile forms public projects write (our own small cases, after
reading how multi-arch projects write them): line ends of every kind, a BOM, parser
directives, heredocs, odd JSON quoting. Each one lints without an exception, and the same
Dockerfile gives the same findings whatever its line ends are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit_farm.lint.rules import lint_text

PLATFORMS = ["linux/amd64", "linux/arm64"]
# A literal amd64 download in the final stage: one finding, at line 3, whatever the line ends.
AMD64_ONLY = (
    "FROM alpine:3.20\nARG TARGETARCH\nRUN wget -q https://dl.example.org/tool-amd64.tgz \\\n"
    '  && tar -xzf tool-amd64.tgz\nCMD ["tool"]\n'
)


def _found(text: str, platforms: list[str] = PLATFORMS) -> list[tuple[str, int]]:
    return sorted((f.rule, f.line) for f in lint_text(text, file="Dockerfile", platforms=platforms))


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_line_ends_do_not_change_the_findings(newline: str):
    assert _found(AMD64_ONLY) == [("wrong-arch-binary", 3)]
    assert _found(AMD64_ONLY.replace("\n", newline)) == _found(AMD64_ONLY)


FORMS = {
    "heredoc_with_two_bodies": (
        'FROM alpine\nRUN <<EOF1 cat - <<EOF2 > /dev/null\nfirst body\nEOF1\nsecond body\nEOF2\nCMD ["sh"]\n'
    ),
    "heredoc_tab_stripped": 'FROM alpine\nRUN <<-EOT\n\techo one\n\tEOT\nCMD ["sh"]\n',
    "heredoc_to_a_file": 'FROM alpine\nCOPY <<EOF /etc/app.conf\nlisten = 8080\nEOF\nCMD ["sh"]\n',
    "heredoc_quoted_word": "FROM alpine\nRUN <<'EOF'\necho $NOT_EXPANDED\nEOF\n",
    "heredoc_never_closed": "FROM alpine\nRUN <<EOF\necho runs to the end\n",
    "escape_backtick": "# escape=`\nFROM alpine\nRUN echo a `\n    b\nWORKDIR C:\\\\x\n",
    "escape_without_space": "#escape=`\nFROM alpine\nRUN echo a `\n  b\n",
    "directives_then_comment": "# syntax=docker/dockerfile:1\n# check=skip=all\n# a comment\nFROM alpine\n",
    "comment_and_blank_inside_continuation": "FROM alpine\nRUN echo a \\\n# comment\n\n    && echo b\n",
    "continuation_at_end_of_file": "FROM alpine\nRUN echo a \\\n",
    "lowercase_and_onbuild": "from alpine as base\nonbuild run echo x\nFROM base\nrun echo y\n",
    "json_odd_quoting": 'FROM alpine\nCMD ["sh", "-c", "echo \\"quoted\\" it\'s \\\\ done", "\\u00e9"]\n',
    "json_not_json": 'FROM alpine\nCMD [ "unterminated\nENTRYPOINT ["a" "b"]\n',
    "empty_json": "FROM alpine\nENTRYPOINT []\nCMD []\n",
    "env_both_forms": 'FROM alpine\nENV A=1 B="two words" C=three\\ words\nENV OLD value with spaces\n',
    "nested_expansions": "FROM alpine\nARG A=${B:-${C:-${D}}}\nRUN echo ${A:?x} ${A:+y} ${A#v} ${A%%.*} $((1+2))\n",
    "variables_in_from": "ARG BASE=alpine\nARG TAG=3.20\nFROM ${BASE}:${TAG} AS one\nFROM $BASE\nCOPY --from=one / /\n",
    "tabs_and_trailing_spaces": "FROM\talpine:3.20   \nRUN\techo hi\t\n",
    # instructions that take few arguments, written with just enough
    "few_arguments": (
        "FROM alpine\nARG A\nENV B=1\nENV C two words\nLABEL d=e\nEXPOSE 80\nVOLUME /data\nUSER 1000\n"
        "WORKDIR /srv\nSTOPSIGNAL SIGTERM\nHEALTHCHECK NONE\nONBUILD RUN echo x\nCMD\nENTRYPOINT\n"
    ),
    "exec_forms_with_enough_arguments": (
        'FROM alpine\nRUN ["true"]\nCOPY ["a b", "/dst/"]\nADD ["x.tar", "/"]\nSHELL ["/bin/sh", "-c"]\n'
    ),
    "run_with_a_mount_and_a_command": "FROM alpine\nRUN --mount=type=cache,target=/root/.cache \\\n    make\n",
    "copy_heredoc_and_destination": "FROM alpine\nCOPY --chmod=755 <<EOF /usr/local/bin/hello\n#!/bin/sh\nEOF\n",
    "run_heredoc_only": "FROM alpine\nRUN <<EOF\napk add curl\nEOF\n",
}


@pytest.mark.parametrize("name", FORMS)
def test_a_form_public_dockerfiles_use_is_read_without_a_syntax_error(name: str):
    findings = _found(FORMS[name])
    assert not [rule for rule, _ in findings if rule == "dockerfile-syntax"], findings


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("", 1),
        ("# only a comment\n", 1),
        ("FROM\n", 1),
        ("FROM alpine AS\n", 1),
        ("FROM alpine AS a AS b\n", 1),  # BuildKit: FROM requires either one or three arguments
        ("FROM alpine AS base extra\n", 1),
        ("RUN echo before any FROM\n", 1),
        # an instruction with no arguments, or too few: BuildKit's parser refuses it
        ("FROM alpine\nCOPY\n", 2),
        ("FROM alpine\nCOPY app.py\n", 2),
        ("FROM alpine\nCOPY --from=build /out/app\n", 2),
        ('FROM alpine\nCOPY ["app.py"]\n', 2),
        ("FROM alpine\nADD\n", 2),
        ("FROM alpine\nADD --checksum=sha256:00 https://example.org/x.tgz\n", 2),
        ("FROM alpine\nARG\n", 2),
        ("ARG\nFROM alpine\n", 1),
        ("FROM alpine\nENV\n", 2),
        ("FROM alpine\nENV NAME\n", 2),
        ("FROM alpine\nLABEL\n", 2),
        ("FROM alpine\nLABEL maintainer\n", 2),
        ("FROM alpine\nWORKDIR\n", 2),
        ("FROM alpine\nUSER\n", 2),
        ("FROM alpine\nEXPOSE\n", 2),
        ("FROM alpine\nVOLUME\n", 2),
        ("FROM alpine\nSTOPSIGNAL\n", 2),
        ("FROM alpine\nONBUILD\n", 2),
        ("FROM alpine\nHEALTHCHECK\n", 2),
        ("FROM alpine\nHEALTHCHECK CMD\n", 2),
        ("FROM alpine\nHEALTHCHECK --interval=5s CMD\n", 2),
        ("FROM alpine\nHEALTHCHECK NONE now\n", 2),
        ("FROM alpine\nHEALTHCHECK curl -f http://localhost/\n", 2),
        ("FROM alpine\nSHELL\n", 2),
        ("FROM alpine\nSHELL []\n", 2),
        ("FROM alpine\nMAINTAINER\n", 2),
        ("FROM --platform=$BUILDPLATFORM\n", 1),
        # a RUN with nothing to run: a continuation too many, or flags only
        ("FROM alpine\nRUN\n", 2),
        ("FROM alpine\nRUN \\\n\n", 2),
        ("FROM alpine\nRUN --mount=type=cache,target=/var/cache/apk\n", 2),
        ("FROM alpine\nrun\t\n", 2),
        ("# escape=`\nFROM alpine\nRUN `\n\n", 3),
    ],
)
def test_a_dockerfile_buildkit_refuses_is_a_syntax_finding(text: str, line: int):
    assert ("dockerfile-syntax", line) in _found(text)
    finding = next(f for f in lint_text(text, platforms=PLATFORMS) if f.rule == "dockerfile-syntax" and f.line == line)
    assert finding.severity == "error" and finding.fix


@pytest.mark.parametrize("keyword", ["RUN", "COPY", "ADD", "ARG", "ENV", "FROM"])
def test_the_real_cli_names_the_line_of_an_empty_instruction_and_exits_1(tmp_path: Path, keyword: str):
    file = tmp_path / "Dockerfile"
    file.write_text(f'FROM alpine:3.20\nWORKDIR /app\n{keyword}\nCMD ["sh"]\n')
    done = subprocess.run(
        [sys.executable, "-m", "buildkit_farm", "lint", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{file}:3: error dockerfile-syntax: {keyword}" in done.stdout


def test_the_real_cli_reads_a_bom_crlf_file_like_a_plain_one(tmp_path: Path):
    plain, odd = tmp_path / "plain.Dockerfile", tmp_path / "odd.Dockerfile"
    plain.write_text(AMD64_ONLY)
    odd.write_bytes(b"\xef\xbb\xbf" + AMD64_ONLY.replace("\n", "\r\n").encode())
    outputs = []
    for file in (plain, odd):
        done = subprocess.run(
            [sys.executable, "-m", "buildkit_farm", "lint", "--platform", ",".join(PLATFORMS), str(file)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr
        outputs.append(done.stdout.replace(str(file), "FILE"))
    assert outputs[0] == outputs[1]
    assert "FILE:3: error wrong-arch-binary" in outputs[0]
