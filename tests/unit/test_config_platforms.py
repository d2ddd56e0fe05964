"""Platform names and image references, the two vocabularies the farm file is checked against."""

from __future__ import annotations

import pytest

from buildkit_farm.farmfile import platforms, reference


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        # the book's table 16.1
        ("x86_64", "linux/amd64"),
        ("amd64", "linux/amd64"),
        ("aarch64", "linux/arm64"),
        ("armv8", "linux/arm64"),
        ("arm32v7", "linux/arm/v7"),
        ("armv7", "linux/arm/v7"),
        ("armhf", "linux/arm/v7"),
        ("arm", "linux/arm/v7"),
        # the common others
        ("i386", "linux/386"),
        ("386", "linux/386"),
        ("s390x", "linux/s390x"),
        ("ppc64le", "linux/ppc64le"),
        ("riscv64", "linux/riscv64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("arm/v6", "linux/arm/v6"),
        ("Linux/X86_64", "linux/amd64"),
        (" linux/amd64 ", "linux/amd64"),
        ("windows/amd64", "windows/amd64"),
        ("windows/x86_64", "windows/amd64"),
    ],
)
def test_aliases_normalise(alias, canonical):
    assert platforms.normalise(alias) == canonical


@pytest.mark.parametrize("name", ["armv9", "linux/", "", "darwin/arm64", "linux/arm/v9", "windows", "linux/amd64/v9"])
def test_unknown_platforms_name_the_known_ones(name):
    with pytest.raises(ValueError) as caught:
        platforms.normalise(name)
    assert f'unknown platform "{name}"' in str(caught.value)
    assert "linux/arm64" in caught.value.hint and "aarch64=arm64" in caught.value.hint


def test_every_known_platform_is_its_own_canonical_form():
    for name in platforms.KNOWN_PLATFORMS:
        assert platforms.normalise(name) == name


def test_native_platform_from_uname():
    assert platforms.native_platform("x86_64") == "linux/amd64"
    assert platforms.native_platform("aarch64") == "linux/arm64"
    assert platforms.native_platform("armv7l") == "linux/arm/v7"
    assert platforms.is_windows("windows/amd64") and not platforms.is_windows("linux/amd64")


@pytest.mark.parametrize(
    "ref",
    [
        "app",
        "team/app:1.0",
        "127.0.0.1:5000/base:latest",
        "registry.example.com/team/ch16-folder-list-2:v1",
        "localhost/app",
        "registry.example.com:443/a/b/c:tag_1.2-3",
        "r/app@sha256:" + "0" * 64,
        "r/app:1@sha256:" + "0" * 64,
        "[::1]:5000/app:1",
    ],
)
def test_valid_references(ref):
    reference.check_reference(ref)


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("Team/App", "lowercase"),
        ("https://registry.example.com/app", "without a scheme"),
        ("r/app:-bad", "a tag has"),
        ("r/app@sha256:xyz", "digest"),
        ("", "must not be empty"),
        ("r/app :1", "white space"),
        ("r//app", "expected [registry/]repository"),
    ],
)
def test_invalid_references_say_why(ref, why):
    with pytest.raises(reference.BadReference) as caught:
        reference.check_reference(ref)
    assert why in str(caught.value)


def test_tags_allow_placeholders_but_no_digest():
    reference.check_tag("r/app:{version}")
    reference.check_tag("r/{team}/app:{version}-{arch}")
    assert reference.placeholders("r/app:{version}-{arch}") == ("version", "arch")
    with pytest.raises(reference.BadReference, match="cannot carry a digest"):
        reference.check_tag("r/app@sha256:" + "0" * 64)
    with pytest.raises(reference.BadReference, match="invalid placeholder"):
        reference.check_tag("r/app:{1x}")
    with pytest.raises(reference.BadReference, match="unbalanced brace"):
        reference.check_tag("r/app:{version")
    with pytest.raises(reference.BadReference, match='"r/App:{version}"'):
        reference.check_tag("r/App:{version}")


def test_repository_of_a_reference():
    assert reference.repository("127.0.0.1:5000/app:1@sha256:" + "0" * 64) == "127.0.0.1:5000/app"
