"""Stitching images already in a registry into one manifest list (`publish_list`), on the lab:
the book's `docker manifest create` + `push`, with its checks (missing source, clash)."""

from __future__ import annotations

import urllib.request

import pytest
from registry_images import copy_manifest, push_image

from buildkit_farm import docker
from buildkit_farm.errors import ImageNotFound, PlatformConflict
from buildkit_farm.registry.publish import publish_list
from buildkit_farm.registry.read import check_sources, inspect_image

WIN_VERSION = "10.0.17763.5458"


@pytest.fixture
def base(lab, docker_config):
    """The lab's base list, read from the registry."""
    return inspect_image(lab.base, docker_config=docker_config)


def _digest_in_registry(address: str, repo: str, tag: str) -> str:
    """The digest the registry itself reports for repo:tag (Docker-Content-Digest)."""
    accept = (
        "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    )
    request = urllib.request.Request(
        f"http://{address}/v2/{repo}/manifests/{tag}", method="HEAD", headers={"Accept": accept}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.headers["Docker-Content-Digest"]


def _per_platform_tags(lab, base, repo: str, platforms: tuple[str, ...]) -> dict[str, str]:
    """Push base's variants, as single images, under `repo:linux-<arch>` (the book's
    per-variant tags); platform -> ref."""
    registry, name = repo.split("/", 1)
    base_name = lab.base.split("/", 1)[1].rsplit(":", 1)[0]
    refs = {}
    for variant in base.images:
        if variant.platform in platforms:
            tag = variant.platform.replace("/", "-")
            assert copy_manifest(registry, base_name, variant.digest, name, tag) == variant.digest
            refs[variant.platform] = f"{repo}:{tag}"
    return refs


def test_two_single_platform_images_become_one_list_under_one_tag(lab, registry, docker_config, unique_name, base):
    repo = registry.repo(unique_name("stitch"))
    sources = _per_platform_tags(lab, base, repo, ("linux/amd64", "linux/arm64"))
    for ref in sources.values():  # each variant tag is a single image, as the book's manual flow pushes them
        assert not inspect_image(ref, docker_config=docker_config).is_list

    digest = publish_list([f"{repo}:latest", f"{repo}:1.0"], list(sources.values()), docker_config=docker_config)

    name = repo.split("/", 1)[1]
    assert (
        digest
        == _digest_in_registry(registry.address, name, "latest")
        == _digest_in_registry(registry.address, name, "1.0")
    )
    index = inspect_image(f"{repo}:latest", docker_config=docker_config)
    assert index.is_list and index.digest == digest
    assert index.platforms == ("linux/amd64", "linux/arm64")
    by_platform = {v.platform: v.digest for v in base.images}
    assert {v.platform: v.digest for v in index.images} == {p: by_platform[p] for p in ("linux/amd64", "linux/arm64")}


def test_built_digests_and_a_list_source_are_joined(lab, registry, docker_config, unique_name, base):
    """What `farm build` passes: `repo@sha256:` digests, plus a target's `sources`."""
    repo = registry.repo(unique_name("stitch"))
    base_repo = lab.base.rsplit(":", 1)[0]
    amd64 = next(v for v in base.images if v.platform == "linux/amd64")
    client = docker.client(docker.DockerPaths.resolve(docker_config))  # a test tool: python-on-whales
    client.buildx.imagetools.create(sources=[f"{base_repo}@{amd64.digest}"], tags=[f"{repo}:amd64"])
    win = push_image(
        registry.address,
        repo.split("/", 1)[1],
        "windows-amd64",
        os="windows",
        arch="amd64",
        os_version=WIN_VERSION,
        marker=unique_name,
    )

    digest = publish_list(
        [f"{repo}:app"], [f"{repo}@{amd64.digest}", f"{repo}:windows-amd64"], docker_config=docker_config
    )

    index = inspect_image(f"{repo}:app", docker_config=docker_config)
    assert index.digest == digest
    assert [(v.platform, v.digest, v.os_version) for v in index.images] == [
        ("linux/amd64", amd64.digest, None),
        ("windows/amd64", win, WIN_VERSION),  # kept, though buildx drops it from a single image's config
    ]


def test_a_windows_image_from_another_repository_keeps_its_os_version(lab, registry, docker_config, unique_name, base):
    repo = registry.repo(unique_name("stitch"))
    win_repo = unique_name("winhost")
    win = push_image(
        registry.address, win_repo, "ltsc2019", os="windows", arch="amd64", os_version=WIN_VERSION, marker=unique_name
    )

    publish_list([f"{repo}:latest"], [lab.base, f"{registry.address}/{win_repo}:ltsc2019"], docker_config=docker_config)

    index = inspect_image(f"{repo}:latest", docker_config=docker_config)
    assert index.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64")
    assert [(v.digest, v.os_version) for v in index.images if v.platform == "windows/amd64"] == [(win, WIN_VERSION)]


def test_two_images_of_one_platform_are_refused_naming_both_and_the_tag_is_not_touched(
    lab, registry, docker_config, unique_name, base
):
    name = unique_name("stitch")
    repo = registry.repo(name)
    sources = _per_platform_tags(lab, base, repo, ("linux/amd64",))
    other = f"{repo}:other-amd64"
    push_image(registry.address, name, "other-amd64", os="linux", arch="amd64", marker=unique_name)
    before = publish_list([f"{repo}:latest"], [sources["linux/amd64"]], docker_config=docker_config)

    with pytest.raises(PlatformConflict) as err:
        publish_list([f"{repo}:latest"], [sources["linux/amd64"], other], docker_config=docker_config)

    assert "linux/amd64" in err.value.message
    assert f'"{sources["linux/amd64"]}"' in err.value.message and f'"{other}"' in err.value.message
    assert err.value.exit_code == 2
    assert _digest_in_registry(registry.address, name, "latest") == before


def test_a_missing_source_is_named_and_nothing_is_pushed(lab, registry, docker_config, unique_name, base):
    name = unique_name("stitch")
    repo = registry.repo(name)
    sources = _per_platform_tags(lab, base, repo, ("linux/amd64",))
    missing = f"{repo}:linux-arm64"

    with pytest.raises(ImageNotFound) as err:
        publish_list([f"{repo}:latest"], [sources["linux/amd64"], missing], docker_config=docker_config)

    assert f'"{missing}"' in err.value.message and err.value.exit_code == 1
    assert "latest" not in registry.tags(name)


def test_a_list_is_stitched_into_the_tls_registry_from_the_plain_one(lab, registry, docker_config, unique_name, base):
    name = unique_name("stitch-tls")
    repo = registry.repo(name, tls=True)
    base_repo = lab.base.rsplit(":", 1)[0]
    sources = [f"{base_repo}@{v.digest}" for v in base.images if v.platform in ("linux/arm64", "linux/arm/v7")]

    digest = publish_list([f"{repo}:latest"], sources, docker_config=docker_config, ca=lab.ca)

    assert registry.tags(name, tls=True) == ["latest"]
    index = inspect_image(f"{repo}:latest", docker_config=docker_config, ca=lab.ca)
    assert index.digest == digest
    assert index.platforms == ("linux/arm64", "linux/arm/v7")


def test_sources_are_checked_before_any_build(lab, registry, docker_config, unique_name, base):
    """What `farm build` can call first: missing sources and clashes with the platforms it
    will build fail before anything is built."""
    name = unique_name("stitch")
    win = push_image(
        registry.address, name, "windows-amd64", os="windows", arch="amd64", os_version=WIN_VERSION, marker=unique_name
    )
    source = f"{registry.repo(name)}:windows-amd64"

    plan = check_sources([source], building=["linux/amd64", "linux/arm64"], docker_config=docker_config)
    assert [(e.platform, e.os_version, e.digest) for e in plan.entries][-1] == ("windows/amd64", WIN_VERSION, win)

    with pytest.raises(PlatformConflict) as err:
        check_sources([lab.base], building=["linux/arm64"], docker_config=docker_config)
    assert err.value.message == f'platform linux/arm64 is built by this target and also in "{lab.base}"'

    with pytest.raises(ImageNotFound) as missing:
        check_sources([source, f"{registry.repo(name)}:nope"], docker_config=docker_config)
    assert f'"{registry.repo(name)}:nope"' in missing.value.message
