"""`farm lint`: one Dockerfile per case under lint_cases/, each ending with its expectation.

A case's trailing comments say how to lint it and what must come out, exactly:
    # as: Dockerfile.linux-arm64        (the file name lint sees; names can bind a platform)
    # platform: linux/arm/v7            (a farm target's `dockerfiles` key)
    # platforms: linux/amd64,windows/amd64   (a multi-arch target's platforms)
    # args: BASE=127.0.0.1:5000/base:latest  (build args)
    # expect: rule-id@line rule-id@line  (or `none`)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buildkit_farm.errors import RegistryError, UsageError
from buildkit_farm.lint.dockerfile import parse, substitute
from buildkit_farm.lint.files import Subject, is_dockerfile_name, subjects_for_paths
from buildkit_farm.lint.findings import RULES
from buildkit_farm.lint.names import parse_platform, read_image_name, target_from_name
from buildkit_farm.lint.report import render_text
from buildkit_farm.lint.rules import lint_subjects, lint_text
from buildkit_farm.registry.index import ImageIndex, Variant

CASES = Path(__file__).parent / "lint_cases"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
_META = re.compile(r"^#\s*(expect|as|platform|platforms|args):\s*(.*?)\s*$")


def _case(path: Path) -> tuple[str, dict[str, str]]:
    text = path.read_text()
    meta = {}
    for line in text.splitlines():
        match = _META.match(line)
        if match:
            meta[match.group(1)] = match.group(2)
    return text, meta


def _lint_case(path: Path):
    text, meta = _case(path)
    args = dict(pair.split("=", 1) for pair in meta.get("args", "").split() if pair)
    platforms = [p for p in meta.get("platforms", "").split(",") if p]
    return lint_text(
        text,
        file=meta.get("as", "Dockerfile"),
        platform=meta.get("platform"),
        platforms=platforms,
        build_args=args,
    )


def _expected(meta: dict[str, str]) -> list[tuple[str, int]]:
    words = meta["expect"].split()
    if words == ["none"]:
        return []
    return sorted((word.split("@")[0], int(word.split("@")[1])) for word in words)


CASE_FILES = sorted(CASES.glob("*.Dockerfile"))


def test_there_are_enough_cases():
    assert len(CASE_FILES) >= 25
    covered = {rule for path in CASE_FILES for rule, _ in _expected(_case(path)[1])}
    registry_only = {"from-not-multiarch", "from-missing-platform", "from-unreadable"}
    assert covered >= set(RULES) - registry_only


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_case(path: Path):
    _, meta = _case(path)
    findings = _lint_case(path)
    got = sorted((f.rule, f.line) for f in findings)
    assert got == _expected(meta), "\n".join(f.render() for f in findings)
    for finding in findings:
        assert finding.severity == RULES[finding.rule].severity
        assert finding.message and finding.fix


# --------------------------------------------------------------------------- parser


def test_parser_directive_escape_backtick_keeps_backslashes():
    df = parse("# escape=`\nFROM x\nRUN dir C:\\ `\n  /B\n")
    assert df.escape == "`"
    run = df.instructions[1]
    assert run.text == "dir C:\\   /B" and run.line == 3 and run.line_at(len(run.text) - 1) == 4


def test_parser_directive_after_a_comment_is_a_comment():
    df = parse("# hello\n# escape=`\nFROM x\nRUN echo a \\\n b\n")
    assert df.escape == "\\"
    assert df.instructions[1].text == "echo a  b"


def test_parser_flags_exec_form_and_stages():
    df = parse(
        "ARG BASE=busybox\nFROM --platform=$BUILDPLATFORM ${BASE} AS Build\n"
        'RUN --mount=type=cache,target=/c ["sh", "-c", "echo"]\nFROM build\n'
    )
    build, final = df.stages
    assert build.name == "build" and build.platform == "$BUILDPLATFORM" and build.image == "busybox"
    assert df.instructions[2].flag("mount") == "type=cache,target=/c"
    assert df.instructions[2].exec_form == ("sh", "-c", "echo")
    assert final.parent == 0


def test_invalid_json_falls_back_to_shell_form():
    df = parse("FROM x\nCMD [not json]\n")
    assert df.instructions[1].exec_form is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("$A/${B}", "1/2"),
        ("${C:-fallback}", "fallback"),
        ("${A:+set}", "set"),
        ("${C:+set}", ""),
        ("$UNKNOWN", "$UNKNOWN"),
    ],
)
def test_substitute(value, expected):
    assert substitute(value, {"A": "1", "B": "2"}) == expected


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "ref, arch, os_name",
    [
        ("arm64v8/alpine:3.19", "arm64", None),
        ("diamol/base:linux-arm64", "arm64", "linux"),
        ("diamol/base:windows-amd64", "amd64", "windows"),
        ("registry.k8s.io/pause-amd64:3.1", "amd64", None),
        ("127.0.0.1:5000/base:latest", None, None),
        ("mcr.microsoft.com/windows/nanoserver:ltsc2022", None, "windows"),
        ("golang:1.22-bookworm", None, None),
        ("arm32v7/busybox@sha256:" + "a" * 64, "arm/v7", None),
        ("myorg/farm:linux-arm", "arm/v7", "linux"),
    ],
)
def test_read_image_name(ref, arch, os_name):
    name = read_image_name(ref)
    assert (name.arch, name.os) == (arch, os_name)


@pytest.mark.parametrize(
    "name, platform",
    [
        ("Dockerfile.linux-amd64", "linux/amd64"),
        ("Dockerfile.linux-arm", "linux/arm/v7"),
        ("Dockerfile.windows-amd64", "windows/amd64"),
        ("arm64.Dockerfile", "linux/arm64"),
        ("Dockerfile.aarch64", "linux/arm64"),  # a large publisher's per-architecture names
        ("Dockerfile.armhf", "linux/arm/v7"),
        ("arm64v8.dockerfile", "linux/arm64"),
        ("Dockerfile", None),
        ("Dockerfile.broken", None),
        ("Dockerfile.solution", None),
    ],
)
def test_platform_from_file_name(name, platform):
    target = target_from_name(name)
    assert (target.platform if target else None) == platform


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Dockerfile", True),
        ("Dockerfile.linux-arm64", True),
        ("Dockerfile.broken", True),
        ("app.Dockerfile", True),
        ("Containerfile", True),
        ("dockerfile.py", False),
        ("dockerfile_and_dockerfiles.toml", False),
        ("Dockerfile.j2", False),
        ("README.md", False),
    ],
)
def test_which_files_a_folder_lint_takes(name, expected):
    assert is_dockerfile_name(name) is expected


# --------------------------------------------------------------------------- registry check


def _index(ref: str, platforms: list[str], *, is_list: bool = True) -> ImageIndex:
    variants = tuple(Variant(platform=p, digest="sha256:" + "b" * 64, size=1, media_type="m") for p in platforms)
    media = "application/vnd.oci.image.index.v1+json" if is_list else "application/vnd.oci.image.manifest.v1+json"
    return ImageIndex(
        ref=ref, digest="sha256:" + "c" * 64, media_type=media, size=1, is_list=is_list, variants=variants
    )


def _reader(indexes: dict[str, ImageIndex]):
    def inspect(ref: str) -> ImageIndex:
        if ref not in indexes:
            raise RegistryError(f"cannot reach the registry for {ref}")
        return indexes[ref]

    return inspect


REGISTRY = {
    "127.0.0.1:5000/base:latest": _index("base", ["linux/amd64", "linux/arm64", "linux/arm/v7"]),
    "127.0.0.1:5000/tool:1": _index("only", ["linux/amd64"], is_list=False),
}


@pytest.mark.parametrize(
    "from_, kwargs, expected",
    [
        ("127.0.0.1:5000/base:latest", {"platforms": ["linux/amd64", "linux/arm64"]}, []),
        ("127.0.0.1:5000/tool:1", {}, [("from-not-multiarch", 1)]),
        ("127.0.0.1:5000/tool:1", {"platform": "linux/amd64"}, []),
        ("127.0.0.1:5000/tool:1", {"platform": "linux/arm64"}, [("from-missing-platform", 1)]),
        ("127.0.0.1:5000/base:latest", {"platforms": ["linux/s390x"]}, [("from-missing-platform", 1)]),
        ("127.0.0.1:5000/gone:1", {}, [("from-unreadable", 1)]),
    ],
)
def test_registry_check(from_, kwargs, expected):
    findings = lint_text(f"FROM {from_}\nCMD echo hi\n", inspect=_reader(REGISTRY), **kwargs)
    assert sorted((f.rule, f.line) for f in findings) == expected


def test_plain_lint_does_not_read_the_registry():
    # Without a reader the single-platform image goes unnoticed: only its name is read.
    assert lint_text("FROM 127.0.0.1:5000/tool:1\n") == []


# --------------------------------------------------------------------------- the examples


def _example_findings(relative: str, **kwargs):
    path = EXAMPLES / relative
    return lint_text(path.read_text(), file=path.name, **kwargs)


def test_lab_fix_broken_fails_on_both_rules():
    rules = {f.rule for f in _example_findings("lab-fix/Dockerfile.broken")}
    assert "arch-specific-from" in rules  # rule 1: multi-arch FROM
    assert rules & {"windows-command-on-linux", "mixed-os-syntax"}  # rule 2: no OS-specific commands
    assert any(RULES[r].severity == "error" for r in rules)


@pytest.mark.parametrize(
    "platforms", [["linux/amd64", "linux/arm64", "linux/arm/v7"], ["linux/amd64", "windows/amd64"]]
)
def test_lab_fix_fixed_is_clean_for_linux_and_windows(platforms):
    assert _example_findings("lab-fix/Dockerfile", platforms=platforms) == []


@pytest.mark.parametrize("name", ["linux-amd64", "linux-arm64", "linux-arm", "windows-amd64"])
def test_folder_list_per_platform_files_are_clean_for_their_own_platform(name):
    assert _example_findings(f"folder-list/Dockerfile.{name}") == []


def test_folder_list_windows_file_is_flagged_as_a_linux_one():
    path = EXAMPLES / "folder-list/Dockerfile.windows-amd64"
    findings = lint_text(path.read_text(), file="Dockerfile.windows-amd64", platform="linux/amd64")
    assert {f.rule for f in findings} >= {"from-platform-mismatch", "windows-command-on-linux"}


def test_folder_list_linux_file_is_flagged_for_another_platform():
    path = EXAMPLES / "folder-list/Dockerfile.linux-arm64"
    findings = lint_text(path.read_text(), file="Dockerfile", platform="linux/amd64")
    assert {f.rule for f in findings} == {"from-platform-mismatch"}


def test_every_other_example_dockerfile_is_clean():
    skip = {"Dockerfile.broken"}
    files = [p for p in subjects_for_paths([str(EXAMPLES)]) if p.path.name not in skip]
    assert len(files) >= 6
    report = lint_subjects(files)
    assert report.findings == (), render_text(report)


# --------------------------------------------------------------------------- the command


def _farm(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    code = "from buildkit_farm.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_cli_exit_1_on_errors_with_file_line_format():
    result = _farm("lint", "examples/lab-fix/Dockerfile.broken")
    assert result.returncode == 1, result.stderr
    first = result.stdout.splitlines()[0]
    assert re.match(r"^examples/lab-fix/Dockerfile\.broken:\d+: (error|warning|hint) [a-z-]+: .+ \(.+\)$", first)


def test_cli_exit_0_when_clean_and_json():
    result = _farm("lint", "--json", "examples/lab-fix/Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)["result"]
    assert data["errors"] == 0 and data["findings"] == []


def test_cli_warnings_do_not_fail(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM 127.0.0.1:5000/base:latest\nENV ARCH=amd64\n")
    result = _farm("lint", "--json", str(tmp_path))
    assert result.returncode == 0
    assert [f["rule"] for f in json.loads(result.stdout)["result"]["findings"]] == ["hard-coded-arch"]


def test_cli_exit_2_for_a_missing_file(tmp_path):
    result = _farm("lint", "no-such-Dockerfile", "-f", str(tmp_path / "none.toml"))
    assert result.returncode == 2


def test_unknown_path_is_a_usage_error():
    with pytest.raises(UsageError):
        subjects_for_paths(["/no/such/Dockerfile"])


def test_same_file_from_two_subjects_is_reported_once(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text("FROM amd64/busybox\n")
    report = lint_subjects([Subject(path), Subject(path, platforms=("linux/amd64",))], display=str)
    assert [(f.rule, f.line) for f in report.findings] == [("arch-specific-from", 1)]
    assert report.exit_code == 1


# --------------------------------------------------------------------------- robustness

_FRAGMENTS = st.sampled_from(
    [
        "FROM ",
        "FROM --platform=$BUILDPLATFORM ",
        "AS build",
        "ARG ",
        "RUN ",
        "CMD ",
        "ENTRYPOINT ",
        "SHELL ",
        "COPY --from=build ",
        "ENV ",
        "HEALTHCHECK CMD ",
        "# escape=`",
        "# syntax=x",
        "\\\n",
        "`\n",
        "\n",
        " ",
        "[",
        "]",
        '"',
        "'",
        "${A:-",
        "}",
        "$TARGETARCH",
        "%PATH%",
        "C:\\",
        "uname",
        "cmd /S /C",
        "<<EOF\n",
        "EOF\n",
        "arm64v8/alpine",
        "127.0.0.1:5000/base:latest",
        "amd64",
        "#",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40).map("".join) | st.text(max_size=300))
def test_lint_never_crashes(text):
    for finding in lint_text(text, file="Dockerfile"):
        assert finding.line >= 1 and finding.rule in RULES


@pytest.mark.parametrize(
    ("spelling", "platform"),
    [("linux/aarch64/v8", "linux/arm64"), ("linux/arm/7", "linux/arm/v7"), ("linux/x86_64/v2", "linux/amd64")],
)
def test_lint_reads_platforms_as_containerd_does(spelling, platform):
    # One vocabulary: lint's --platform goes through farmfile.platforms (amd64 levels fold to amd64).
    target = parse_platform(spelling, "--platform")
    assert target.platform == platform
    assert lint_text("FROM 127.0.0.1:5000/base:latest\n", platforms=[spelling]) == []


def test_lint_refuses_what_containerd_refuses():
    for spelling in ("linux/arm/foo/bar", "linux /arm", "/linux/arm"):
        with pytest.raises(UsageError):
            parse_platform(spelling, "--platform")
