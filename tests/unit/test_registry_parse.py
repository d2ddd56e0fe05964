"""Parsing recorded `docker buildx imagetools inspect --format '{{json .}}'` output (buildx
0.13.1 against a real registry), and the source arguments given to `imagetools create`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildkit_farm.registry.index import ImageIndex, Variant, create_passes, parse_inspect, plan_list

DATA = Path(__file__).parent / "data"


def _load(name: str) -> tuple[str, dict]:
    data = json.loads((DATA / name).read_text())
    return data["name"], data


def test_a_list_gives_every_variant_in_order_with_the_list_digest():
    ref, data = _load("imagetools_list_4.json")
    index = parse_inspect(ref, data)
    assert index.is_list and index.media_type == "application/vnd.oci.image.index.v1+json"
    assert index.digest == "sha256:6d906cfa40cd369dc392ba910453b9038df6a0eb3e4455594ed073ed61ac7ba9"
    assert index.size == 1212
    assert index.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64")
    assert index.variants[0] == Variant(
        "linux/amd64",
        "sha256:b6b627392f8a75256ea48ecc8be7f89a9f6016fbefe343f9d60732b527bb6894",
        476,
        "application/vnd.oci.image.manifest.v1+json",
    )
    assert not any(v.is_attestation for v in index.variants)


def test_a_list_entry_keeps_its_os_version():
    ref, data = _load("imagetools_list_windows.json")
    index = parse_inspect(ref, data)
    windows = [v for v in index.variants if v.platform == "windows/amd64"]
    assert [v.os_version for v in windows] == ["10.0.17763.5458"]
    assert [v.os_version for v in index.variants if v.platform.startswith("linux/")] == [None, None]


@pytest.mark.parametrize(
    ("name", "platform", "os_version"),
    [
        ("imagetools_single_linux.json", "linux/amd64", None),
        ("imagetools_single_armv7.json", "linux/arm/v7", None),
        ("imagetools_single_windows.json", "windows/amd64", "10.0.17763.5458"),
    ],
)
def test_a_single_manifest_takes_its_platform_from_the_config(name, platform, os_version):
    ref, data = _load(name)
    index = parse_inspect(ref, data)
    assert not index.is_list
    assert index.platforms == (platform,)
    (variant,) = index.variants
    assert variant.digest == index.digest == data["manifest"]["digest"]
    assert variant.size == index.size == data["manifest"]["size"]
    assert variant.os_version == os_version


def test_attestation_manifests_of_a_buildx_build_are_marked_and_linked_to_their_image():
    ref, data = _load("imagetools_attestation.json")  # buildx build --provenance=mode=min --push
    index = parse_inspect(ref, data)
    assert index.is_list and index.platforms == ("linux/amd64",)
    image, attestation = index.variants
    assert not image.is_attestation and image.platform == "linux/amd64"
    assert attestation.is_attestation and attestation.platform == "unknown/unknown"
    assert (
        attestation.attests == image.digest == "sha256:f438bf531951f41b00ca31c9afda5ea8d8a9643fdfe31420562f57a8d4fd11a3"
    )
    assert index.images == (image,)


def test_a_docker_manifest_list_is_a_list_too():
    ref, data = _load("imagetools_lab_base.json")  # the lab's base, made by imagetools create
    index = parse_inspect(ref, data)
    assert index.is_list and index.media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert index.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")
    assert {v.media_type for v in index.variants} == {"application/vnd.docker.distribution.manifest.v2+json"}


# ---- source arguments for imagetools create


def _single(ref: str, platform: str, digest_char: str, os_version: str | None = None) -> ImageIndex:
    digest = "sha256:" + digest_char * 64
    variant = Variant(platform, digest, 476, "application/vnd.oci.image.manifest.v1+json", os_version=os_version)
    return ImageIndex(ref, digest, variant.media_type, 476, False, (variant,))


def test_linux_sources_are_passed_as_they_were_written():
    indexes = [_single("reg:5000/app:linux-amd64", "linux/amd64", "a"), _single("other:5000/x:arm", "linux/arm64", "b")]
    assert create_passes(["reg:5000/app:1"], indexes) == (["reg:5000/app:linux-amd64", "other:5000/x:arm"], [])


def test_a_windows_source_in_the_tags_repository_becomes_a_descriptor_keeping_os_version():
    win = _single("reg:5000/app:windows-amd64", "windows/amd64", "c", "10.0.17763.5458")
    first, fixups = create_passes(["reg:5000/app:1"], [_single("reg:5000/app:linux-amd64", "linux/amd64", "a"), win])
    assert first[0] == "reg:5000/app:linux-amd64"
    assert json.loads(first[1]) == {
        "digest": "sha256:" + "c" * 64,
        "platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.5458"},
    }
    assert fixups == []


def test_a_windows_source_in_another_repository_is_fixed_up_after_the_copy():
    win = _single("winhost:5000/app:ltsc2019", "windows/amd64", "c", "10.0.17763.5458")
    first, fixups = create_passes(
        ["reg:5000/app:1", "reg:5000/app:latest"], [_single("reg:5000/app:linux-amd64", "linux/amd64", "a"), win]
    )
    assert first == ["reg:5000/app:linux-amd64", "winhost:5000/app:ltsc2019"]
    assert [tag for tag, _ in fixups] == ["reg:5000/app:1", "reg:5000/app:latest"]
    assert all(json.loads(extra[0])["platform"]["os.version"] == "10.0.17763.5458" for _, extra in fixups)


def test_planning_recorded_images_joins_them_without_clash():
    indexes = [
        parse_inspect(*_load(n))
        for n in ("imagetools_single_linux.json", "imagetools_single_armv7.json", "imagetools_single_windows.json")
    ]
    plan = plan_list(indexes)
    assert plan.platforms == ("linux/amd64", "linux/arm/v7", "windows/amd64")
    assert plan.clashes == ()


def test_planning_a_list_with_one_of_its_own_images_is_no_clash_but_another_image_is():
    listed = parse_inspect(*_load("imagetools_list_4.json"))
    same = parse_inspect(*_load("imagetools_single_linux.json"))
    assert plan_list([listed, same]).clashes == ()
    other = _single("r/app:other-amd64", "linux/amd64", "e")
    (clash,) = plan_list([listed, other]).clashes
    assert clash.platform == "linux/amd64" and clash.sources == (listed.ref, "r/app:other-amd64")
