"""The platform parser agrees with containerd's: one case per line of platform_cases/containerd.txt."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from buildkit_farm.farmfile import platforms

CASES = Path(__file__).parent / "platform_cases" / "containerd.txt"
_CASE = re.compile(r"^(.*?) -> (\S+)\s*(?:#.*)?$")


def _cases() -> list[tuple[str, str]]:
    cases = []
    for line in CASES.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _CASE.match(line)
        assert match, f"bad case line: {line!r}"
        cases.append((match.group(1), match.group(2)))
    return cases


CONTAINERD_CASES = _cases()


def test_the_table_names_its_commit_and_has_every_case():
    assert "09756f59cb1d6b3fb368f371043d36e634789537" in CASES.read_text()
    assert len(CONTAINERD_CASES) >= 60


@pytest.mark.parametrize(("spelling", "expected"), CONTAINERD_CASES, ids=[c[0] or "<empty>" for c in CONTAINERD_CASES])
def test_containerd_case(spelling: str, expected: str):
    if expected == "refused":
        with pytest.raises(platforms.PlatformError) as caught:
            platforms.normalise(spelling)
        assert caught.value.message in (f'unknown platform "{spelling}"', f"unknown platform {json.dumps(spelling)}")
    else:
        assert platforms.normalise(spelling) == expected
        assert platforms.normalise(expected) == expected  # the canonical form is a fixed point


@pytest.mark.parametrize(
    ("arch", "variant", "expected"),
    [
        ("i386", "v7", ("386", "")),
        ("x86_64", "v1", ("amd64", "")),
        ("x86-64", "v3", ("amd64", "v3")),
        ("aarch64", "8", ("arm64", "")),
        ("arm64", "v8.0", ("arm64", "")),
        ("arm64", "9.0", ("arm64", "v9")),
        ("armhf", "", ("arm", "v7")),
        ("armel", "v7", ("arm", "v6")),
        ("arm", "", ("arm", "v7")),
        ("arm", "5", ("arm", "v5")),
        ("arm", "8", ("arm", "v8")),
        ("sparc64", "", ("sparc64", "")),
    ],
)
def test_normalise_arch_is_containerds(arch, variant, expected):
    assert platforms.normalise_arch(arch, variant) == expected


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", "linux/amd64"),
        ("aarch64", "linux/arm64"),
        ("arm64", "linux/arm64"),
        ("armv8l", "linux/arm/v7"),  # 32-bit userland on a 64-bit ARM kernel
        ("armv7l", "linux/arm/v7"),
        ("armv6l", "linux/arm/v6"),
        ("armv5tel", "linux/arm/v5"),
        ("i686", "linux/386"),
        ("ppc64le", "linux/ppc64le"),
        ("s390x", "linux/s390x"),
        ("riscv64", "linux/riscv64"),
        ("loongarch64", "linux/loong64"),
    ],
)
def test_native_platform_reads_uname(machine, expected):
    assert platforms.native_platform(machine) == expected


@pytest.mark.parametrize("machine", ["sun4v", "", "armv9l", "x86_64/v2"])
def test_native_platform_refuses_an_unknown_machine(machine):
    with pytest.raises(platforms.PlatformError):
        platforms.native_platform(machine)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("linux/amd64,linux/arm64", "one platform per item"),
        ("linux/amd64 linux/arm64", "one platform per item"),
        ("linux", "name the architecture too, e.g. linux/amd64"),
        ("Windows", "name the architecture too, e.g. windows/amd64"),
        ("darwin/arm64", "farm builds linux images"),
        ("freebsd/amd64/v2", "farm builds linux images"),
        ("linux/*", "only letters, digits"),
        ("linux//arm64", "an empty part"),
        ("linux/arm/v7/extra", "at most os/arch/variant"),
        ("linux/sparc64", "known: linux/amd64"),
    ],
)
def test_a_refused_platform_says_what_to_write(name, hint):
    with pytest.raises(platforms.PlatformError) as caught:
        platforms.normalise(name)
    assert hint in caught.value.hint


@pytest.mark.parametrize("name", ["linux/arm64\x00", "linux/\x1b[2Jamd64", "linux/arm\u202e64", 'linux/"amd64"'])
def test_a_refused_platform_is_shown_escaped(name):
    with pytest.raises(platforms.PlatformError) as caught:
        platforms.normalise(name)
    shown = caught.value.message
    assert shown.startswith('unknown platform "') and shown.isprintable()
    assert '\\"amd64\\"' in shown or '"amd64"' not in shown


# Matching, as farm decides it: a node builds exactly the canonical platforms it is pinned to.
# containerd's `Only` lets an arm64 host also pull arm/v8..v5 images and an amd64 host 386 ones;
# farm never infers that: an arm/v7 build goes to a node pinned to linux/arm/v7 (or is emulated
# where allow_emulation says so). Two spellings pin the same platform only if they normalise alike.
@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("aarch64", "linux/arm64/v8", True),
        ("armhf", "linux/arm", True),
        ("arm32v7", "arm", True),
        ("armel", "linux/arm/v6", True),
        ("x86_64", "AMD64", True),
        ("i386", "x86", True),
        ("linux/amd64", "linux/amd64/v2", False),
        ("linux/arm64", "linux/arm/v7", False),
        ("linux/amd64", "linux/386", False),
        ("linux/amd64", "windows/amd64", False),
    ],
)
def test_two_spellings_name_one_platform_only_when_they_normalise_alike(a, b, same):
    assert (platforms.normalise(a) == platforms.normalise(b)) is same
