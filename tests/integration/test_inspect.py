"""`inspect_image` / `farm inspect` against the lab's registries: plain http and TLS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from buildkit_farm import docker
from buildkit_farm.errors import ImageNotFound, RegistryError
from buildkit_farm.registry.access import CA_ENV
from buildkit_farm.registry.publish import publish_list
from buildkit_farm.registry.read import inspect_image

LISTS = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"


def _farm(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import sys; from buildkit_farm.cli import main; sys.argv = ['farm', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)


def _env(docker_config, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (CA_ENV, "SSL_CERT_DIR")}
    return {**env, "DOCKER_CONFIG": str(docker_config), **extra}


def test_the_base_list_shows_each_platform_as_the_registry_holds_it(lab, registry, docker_config):
    index = inspect_image(lab.base, docker_config=docker_config)

    name, tag = lab.base.split("/", 1)[1].rsplit(":", 1)
    request = urllib.request.Request(f"http://{registry.address}/v2/{name}/manifests/{tag}", headers={"Accept": LISTS})
    with urllib.request.urlopen(request, timeout=10) as resp:
        raw, digest = json.loads(resp.read()), resp.headers["Docker-Content-Digest"]
    assert index.is_list and index.digest == digest and index.media_type == raw["mediaType"]
    assert index.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")
    assert [(v.digest, v.size) for v in index.variants] == [(m["digest"], m["size"]) for m in raw["manifests"]]


def test_a_single_image_is_read_with_its_platform_from_its_config(lab, docker_config):
    base = inspect_image(lab.base, docker_config=docker_config)
    arm = next(v for v in base.images if v.platform == "linux/arm/v7")

    index = inspect_image(f"{lab.base.rsplit(':', 1)[0]}@{arm.digest}", docker_config=docker_config)

    assert not index.is_list
    assert index.digest == arm.digest and index.platforms == ("linux/arm/v7",)


def test_a_missing_image_is_not_found_exit_1(lab, registry, docker_config, unique_name):
    ref = f"{registry.repo(unique_name('inspect'))}:nope"
    with pytest.raises(ImageNotFound) as err:
        inspect_image(ref, docker_config=docker_config)
    assert ref in err.value.message

    result = _farm("inspect", ref, env=_env(docker_config))
    assert result.returncode == 1
    assert f'image "{ref}" was not found' in result.stderr and "Traceback" not in result.stderr


def test_the_tls_registry_is_read_with_the_lab_ca_and_refused_without(lab, registry, docker_config, unique_name):
    name = unique_name("inspect-tls")
    ref = f"{registry.repo(name, tls=True)}:latest"
    base = inspect_image(lab.base, docker_config=docker_config)
    publish_list([ref], [lab.base], docker_config=docker_config, ca=lab.ca)  # one list source: copied as is

    index = inspect_image(ref, docker_config=docker_config, ca=lab.ca)
    assert index.digest == base.digest and index.variants == base.variants

    with pytest.raises(RegistryError) as err:
        inspect_image(ref, docker_config=docker_config)
    assert "not trusted" in err.value.message and "--ca" in err.value.hint

    by_env = _farm("inspect", ref, "--json", env=_env(docker_config, **{CA_ENV: str(lab.ca)}))
    assert by_env.returncode == 0, by_env.stderr
    shown = json.loads(by_env.stdout)["result"]
    assert shown["digest"] == base.digest and shown["is_list"] is True
    assert [v["platform"] for v in shown["variants"]] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]

    by_option = _farm("inspect", ref, "--ca", str(lab.ca), env=_env(docker_config))
    assert by_option.returncode == 0, by_option.stderr
    assert f"Digest:    {base.digest}" in by_option.stdout
    assert by_option.stdout.count("sha256:") == 4  # the list, and its three images

    without = _farm("inspect", ref, env=_env(docker_config))
    assert without.returncode == 1 and "--ca" in without.stderr


def test_attestation_manifests_of_a_buildx_build_are_marked(lab, registry, docker_config, unique_name, tmp_path):
    """A real buildx build with provenance: its attestation manifest is no platform."""
    (tmp_path / "Dockerfile").write_text(f"FROM {lab.base}\nCOPY hello.txt /hello.txt\n")
    (tmp_path / "hello.txt").write_text(unique_name + "\n")
    ref = f"{registry.repo(unique_name('inspect-att'))}:latest"
    client = docker.client(docker.DockerPaths.resolve(docker_config))  # a test tool: python-on-whales
    builder = client.buildx.create(
        lab.node1,
        name=unique_name("b"),
        driver="docker-container",
        driver_options={"network": "host", "image": lab.buildkit_image},
    )
    client.buildx.build(
        tmp_path,
        tags=[ref],
        platforms=["linux/amd64"],
        push=True,
        provenance={"mode": "min"},
        builder=builder,
        progress=False,
    )

    index = inspect_image(ref, docker_config=docker_config)

    assert index.is_list and index.platforms == ("linux/amd64",)
    (image,) = index.images
    (attestation,) = [v for v in index.variants if v.is_attestation]
    assert attestation.platform == "unknown/unknown" and attestation.attests == image.digest

    result = _farm("inspect", ref, env=_env(docker_config))
    assert result.returncode == 0, result.stderr
    assert f"attestation for {image.digest}" in result.stdout
    assert "1 platform(s)" in result.stdout
