"""Pure registry logic: joining variants into one list, refs, failures, rendering."""

from __future__ import annotations

import pytest

from buildkit_farm.causes import transient_push
from buildkit_farm.errors import ImageNotFound, PlatformConflict, RegistryError, UsageError
from buildkit_farm.farmfile.reference import registry_host
from buildkit_farm.registry.index import (
    ImageIndex,
    Variant,
    check_plan,
    check_ref,
    classify_failure,
    describe,
    is_loopback,
    plan_list,
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(n: int) -> str:
    return "sha256:" + f"{n:x}".rjust(64, "0")


def _image(ref: str, *variants: tuple[str, int] | tuple[str, int, str], attest: bool = False) -> ImageIndex:
    items = []
    for spec in variants:
        platform, n = spec[0], spec[1]
        os_version = spec[2] if len(spec) > 2 else None
        items.append(Variant(platform, _digest(n), 500 + n, OCI_MANIFEST, os_version=os_version))
        if attest:
            items.append(Variant("unknown/unknown", _digest(1000 + n), 566, OCI_MANIFEST, True, None, _digest(n)))
    is_list = len(items) > 1
    return ImageIndex(
        ref,
        _digest(9999) if is_list else items[0].digest,
        OCI_INDEX if is_list else OCI_MANIFEST,
        700,
        is_list,
        tuple(items),
    )


def test_three_single_platform_images_make_a_three_platform_list():
    plan = plan_list(
        [
            _image("r/app:linux-amd64", ("linux/amd64", 1)),
            _image("r/app:linux-arm64", ("linux/arm64", 2)),
            _image("r/app:linux-arm", ("linux/arm/v7", 3)),
        ]
    )
    assert plan.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")
    assert [e.source for e in plan.entries] == ["r/app:linux-amd64", "r/app:linux-arm64", "r/app:linux-arm"]
    assert plan.clashes == ()
    check_plan(plan)  # no clash: no error


def test_attestation_manifests_are_not_platforms_and_never_clash():
    plan = plan_list(
        [
            _image("r/a@" + _digest(1), ("linux/amd64", 1), attest=True),
            _image("r/a@" + _digest(2), ("linux/arm64", 2), attest=True),
        ]
    )
    assert plan.platforms == ("linux/amd64", "linux/arm64")
    assert plan.clashes == ()


def test_same_platform_in_two_sources_clashes_and_names_both_refs():
    plan = plan_list(
        [
            _image("r/app:one", ("linux/amd64", 1)),
            _image("r/app:two", ("linux/amd64", 2)),
        ]
    )
    assert [(c.platform, c.sources) for c in plan.clashes] == [("linux/amd64", ("r/app:one", "r/app:two"))]
    with pytest.raises(PlatformConflict) as err:
        check_plan(plan)
    assert '"r/app:one"' in err.value.message and '"r/app:two"' in err.value.message
    assert "linux/amd64" in err.value.message
    assert err.value.exit_code == 2


def test_platform_aliases_are_folded_before_comparing():
    plan = plan_list(
        [
            _image("r/app:a", ("linux/arm64/v8", 1)),
            _image("r/app:b", ("linux/arm64", 2)),
        ]
    )
    assert [c.platform for c in plan.clashes] == ["linux/arm64"]


def test_a_multi_platform_source_clashes_with_a_single_one():
    plan = plan_list(
        [
            _image("r/base:latest", ("linux/amd64", 1), ("linux/arm64", 2), ("linux/arm/v7", 3)),
            _image("r/app:linux-arm", ("linux/arm/v7", 4)),
        ]
    )
    assert plan.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")
    assert [(c.platform, c.sources) for c in plan.clashes] == [("linux/arm/v7", ("r/base:latest", "r/app:linux-arm"))]


def test_the_same_digest_twice_is_kept_once_not_a_clash():
    plan = plan_list(
        [
            _image("r/app@" + _digest(1), ("linux/amd64", 1)),
            _image("r/app:linux-amd64", ("linux/amd64", 1)),
        ]
    )
    assert plan.platforms == ("linux/amd64",)
    assert plan.clashes == ()


def test_windows_images_of_different_os_versions_may_share_a_list():
    plan = plan_list(
        [
            _image("r/app:ltsc2019", ("windows/amd64", 1, "10.0.17763.5458")),
            _image("r/app:ltsc2022", ("windows/amd64", 2, "10.0.20348.2322")),
            _image("r/app:linux-amd64", ("linux/amd64", 3)),
        ]
    )
    assert plan.clashes == ()
    assert [(e.platform, e.os_version) for e in plan.entries] == [
        ("windows/amd64", "10.0.17763.5458"),
        ("windows/amd64", "10.0.20348.2322"),
        ("linux/amd64", None),
    ]


def test_windows_images_of_the_same_os_version_clash():
    plan = plan_list(
        [
            _image("r/app:win-a", ("windows/amd64", 1, "10.0.17763.1")),
            _image("r/app:win-b", ("windows/amd64", 2, "10.0.17763.1")),
        ]
    )
    assert [c.sources for c in plan.clashes] == [("r/app:win-a", "r/app:win-b")]


def test_a_windows_image_without_os_version_clashes_with_any_windows_image():
    plan = plan_list(
        [
            _image("r/app:win-a", ("windows/amd64", 1, "10.0.17763.1")),
            _image("r/app:win-b", ("windows/amd64", 2)),
        ]
    )
    assert len(plan.clashes) == 1


@pytest.mark.parametrize(
    ("ref", "host"),
    [
        ("127.0.0.1:5000/base:latest", "127.0.0.1:5000"),
        ("127.0.0.1:5443/team/app@sha256:" + "a" * 64, "127.0.0.1:5443"),
        ("localhost/app", "localhost"),
        ("registry.example.com/app:1", "registry.example.com"),
        ("team/app:1", "docker.io"),
        ("busybox", "docker.io"),
        ("[::1]:5000/app", "[::1]:5000"),
    ],
)
def test_registry_host(ref, host):
    assert registry_host(ref) == host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("localhost:5443", True),
        ("[::1]:5000", True),
        ("registry.example.com", False),
        ("10.0.0.1:5000", False),
        ("docker.io", False),
    ],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    "ref", ["127.0.0.1:5000/Base:latest", "127.0.0.1:5000/base:", "http://127.0.0.1:5000/base", "a b", ""]
)
def test_malformed_refs_are_usage_errors(ref):
    with pytest.raises(UsageError) as err:
        check_ref(ref)
    assert err.value.exit_code == 2


def test_a_tag_to_push_cannot_carry_a_digest():
    with pytest.raises(UsageError):
        check_ref("127.0.0.1:5000/app:1@sha256:" + "a" * 64, what="tag", allow_digest=False)


@pytest.mark.parametrize(
    ("stderr", "kind", "words"),
    [
        ("ERROR: 127.0.0.1:5000/nope:latest: not found", ImageNotFound, "not found"),
        ("ERROR: failed to resolve: 127.0.0.1:5000/x: manifest unknown", ImageNotFound, "not found"),
        (
            'ERROR: Get "https://127.0.0.1:5443/v2/": tls: failed to verify certificate: '
            "x509: certificate signed by unknown authority",
            RegistryError,
            "--ca",
        ),
        (
            'ERROR: Head "http://127.0.0.1:5000/v2/x/manifests/latest": '
            "dial tcp 127.0.0.1:5000: connect: connection refused",
            RegistryError,
            "not reachable",
        ),
        (
            "ERROR: unexpected status from HEAD request to "
            "http://127.0.0.1:5443/v2/x/manifests/latest: 400 Bad Request",
            RegistryError,
            "http = false",
        ),
        ("ERROR: http: server gave HTTP response to HTTPS client", RegistryError, "plain http"),
        (  # buildx 0.29 copying one blob in several requests at once into a filesystem registry
            'ERROR: failed commit on ref "manifest-sha256:27": unexpected status from PUT request to '
            "https://127.0.0.1:5443/v2/x/manifests/sha256:27: 400 Bad Request\nerrors:\n"
            "unknown: provided digest did not match uploaded content\nunknown: blob unknown to registry",
            RegistryError,
            "usually passes",
        ),
        (  # buildx 0.13: the same, without the registry's words; still not a plain-http mistake
            'ERROR: failed commit on ref "index-sha256:27": unexpected status from PUT request to '
            "http://127.0.0.1:5000/v2/x/manifests/1: 400 Bad Request",
            RegistryError,
            "usually passes",
        ),
        ("ERROR: pull access denied: unauthorized", RegistryError, "docker login"),
        (
            'ERROR: error getting credentials - err: exec: "docker-credential-x": executable file not found in $PATH',
            RegistryError,
            "credential helper",
        ),
        ("ERROR: invalid reference format", UsageError, "invalid image reference"),
        ("ERROR: something odd\nand more", RegistryError, "something odd / and more"),
    ],
)
def test_classify_failure(stderr, kind, words):
    err = classify_failure("127.0.0.1:5000/x:latest", stderr, action="push the list to")
    assert type(err) is kind
    assert words in f"{err.message} {err.hint}"


def test_a_cut_read_is_not_called_a_push():
    stderr = "ERROR: unexpected status from GET request to http://r/v2/x/manifests/1: 503 Service Unavailable"
    assert transient_push(stderr)  # the same words from a push would be tried again
    assert "usually passes" not in classify_failure("r/x:1", stderr).message
    assert "usually passes" in classify_failure("r/x:1", stderr, action="push the list to").message


def test_not_found_exits_1_and_bad_ref_exits_2():
    assert classify_failure("r/x", "ERROR: r/x: not found").exit_code == 1
    assert classify_failure("r/x", "ERROR: invalid reference format").exit_code == 2


def test_describe_marks_attestations_and_shows_the_list_digest():
    index = _image("127.0.0.1:5000/app:1", ("linux/amd64", 1), ("linux/arm64", 2), attest=True)
    text = describe(index)
    assert "Digest:    " + _digest(9999) in text
    assert "2 platform(s)" in text
    lines = text.splitlines()
    attestation = [line for line in lines if line.startswith("unknown/unknown")]
    assert len(attestation) == 2 and all("attestation for sha256:" in line for line in attestation)
    assert any(line.startswith("linux/arm64") and _digest(2) in line and "502" in line for line in lines)


def test_a_source_of_a_platform_being_built_clashes_with_the_build():
    plan = plan_list(
        [
            _image("r/app:windows-amd64", ("windows/amd64", 1, "10.0.17763.1")),
            _image("r/other:amd64", ("linux/amd64", 2)),
        ],
        building=["linux/amd64", "linux/arm64"],
    )
    assert plan.platforms == ("linux/amd64", "linux/arm64", "windows/amd64")
    assert [(c.platform, c.sources[1]) for c in plan.clashes] == [("linux/amd64", "r/other:amd64")]
    with pytest.raises(PlatformConflict) as err:
        check_plan(plan)
    assert err.value.message == 'platform linux/amd64 is built by this target and also in "r/other:amd64"'


def test_building_alone_never_clashes():
    assert plan_list([], building=["linux/amd64", "linux/arm64"]).clashes == ()
