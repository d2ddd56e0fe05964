"""The platform parser agrees with containerd's: one case per line of platform_cases/containerd.txt."""

from __future__ import annotations

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
        assert f'unknown platform "{spelling}"' in caught.value.message
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
