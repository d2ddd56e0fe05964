"""The registry HTTP API path (`registry.distribution`) against the lab's real registries:
it reads and publishes exactly what imagetools does, and declines (leaving the work to
imagetools) whenever it does not apply: an untrusted certificate, a registry that asks
for credentials, tags in another repository, the switch turned off."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from buildkit_farm.errors import RegistryError
from buildkit_farm.registry import distribution
from buildkit_farm.registry.access import CA_ENV
from buildkit_farm.registry.publish import publish_list
from buildkit_farm.registry.read import inspect_image


@pytest.fixture
def calls(monkeypatch):
    """Every request the direct path answered (the real functions still run)."""
    seen: list[tuple[str, str, bool]] = []
    real_get, real_put = distribution.get, distribution.put

    def get(ref, **kw):
        answer = real_get(ref, **kw)
        seen.append(("get", ref, answer is not None))
        return answer

    def put(tag, manifest, **kw):
        done = real_put(tag, manifest, **kw)
        seen.append(("put", tag, done))
        return done

    monkeypatch.setattr(distribution, "get", get)
    monkeypatch.setattr(distribution, "put", put)
    return seen


@pytest.fixture(autouse=True)
def _no_ambient_ca(monkeypatch):
    monkeypatch.delenv(CA_ENV, raising=False)


def test_a_list_read_over_the_api_equals_the_imagetools_read(lab, docker_config, calls, monkeypatch):
    direct = inspect_image(lab.base, docker_config=docker_config)
    assert calls == [("get", lab.base, True)]

    monkeypatch.setenv(distribution.SWITCH_ENV, "off")
    via_imagetools = inspect_image(lab.base, docker_config=docker_config)

    assert direct == via_imagetools
    assert direct.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")


def test_a_tag_gets_the_exact_list_pushed_by_digest_and_both_paths_agree(
    lab, registry, docker_config, unique_name, calls, monkeypatch
):
    repo = registry.repo(unique_name("api"))
    # Another repository: imagetools copies the list (the direct path only moves tags within one).
    first = publish_list([f"{repo}:src"], [lab.base], docker_config=docker_config)
    assert not any(kind == "put" for kind, _, _ in calls)
    source = f"{repo}@{first}"

    calls.clear()
    digest = publish_list([f"{repo}:1", f"{repo}:latest"], [source], docker_config=docker_config)
    assert digest == first
    assert [c for c in calls if c[0] == "put"] == [("put", f"{repo}:1", True), ("put", f"{repo}:latest", True)]
    name = repo.split("/", 1)[1]
    assert sorted(registry.tags(name)) == ["1", "latest", "src"]
    for tag in ("1", "latest"):
        assert (
            registry._get(f"/v2/{name}/manifests/{tag}", tls=False, accept=distribution._ACCEPT)[1][
                "Docker-Content-Digest"
            ]
            == first
        )

    one = inspect_image(f"{repo}:1", docker_config=docker_config)
    monkeypatch.setenv(distribution.SWITCH_ENV, "off")
    calls.clear()
    assert publish_list([f"{repo}:2"], [source], docker_config=docker_config) == first  # through imagetools
    two = inspect_image(f"{repo}:2", docker_config=docker_config)
    assert not any(answered for _, _, answered in calls)
    assert (two.digest, two.variants) == (one.digest, one.variants)


def test_the_tls_registry_is_read_directly_only_with_its_ca(lab, registry, docker_config, unique_name, calls):
    ref = f"{registry.repo(unique_name('api-tls'), tls=True)}:1"
    publish_list([ref], [lab.base], docker_config=docker_config, ca=lab.ca)

    assert distribution.get(ref, ca=lab.ca) is not None
    assert distribution.get(ref) is None  # not trusted: declined, and imagetools says why
    with pytest.raises(RegistryError) as err:
        inspect_image(ref, docker_config=docker_config)
    assert "not trusted" in err.value.message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def auth_registry(tmp_path, lab):
    """A real registry (the lab's binary) that asks every client for credentials."""
    port = _free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
        f"auth: {{silly: {{realm: 'http://127.0.0.1:{port}/token', service: farm-test}}}}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    address = f"127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=1)
            except urllib.error.HTTPError as err:
                if err.code == 401:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("the auth registry did not start")
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_registry_that_asks_for_credentials_is_left_to_imagetools(auth_registry):
    ref = f"{auth_registry}/app:1"
    assert distribution.get(ref) is None
    manifest = distribution.Manifest(f"{auth_registry}/app@sha256:x", b"{}", "application/vnd.oci.image.index.v1+json")
    assert distribution.put(ref, manifest) is False
