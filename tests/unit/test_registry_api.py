"""A list as the registry's HTTP API serves it reads exactly as imagetools' answer does; what
the direct path declines (and so leaves to imagetools). Pure: no registry is reached."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from buildkit_farm.registry import distribution
from buildkit_farm.registry.index import parse_inspect, parse_list

DATA = Path(__file__).parent / "data"
RECORDED = ["imagetools_list_4.json", "imagetools_list_windows.json", "imagetools_attestation.json"]


def _served(name: str) -> tuple[dict, bytes]:
    """The recorded imagetools answer, and the list's bytes as a registry would serve them."""
    data = json.loads((DATA / name).read_text())
    raw = {k: v for k, v in data["manifest"].items() if k not in ("digest", "size")}
    return data, json.dumps(raw, indent=2).encode()


@pytest.mark.parametrize("name", RECORDED)
def test_a_served_list_reads_as_imagetools_reads_it(name):
    data, body = _served(name)
    via_imagetools = parse_inspect(data["name"], data)

    index = parse_list(data["name"], body, "")

    assert index is not None and index.is_list
    assert index.variants == via_imagetools.variants
    assert index.media_type == via_imagetools.media_type
    assert index.digest == "sha256:" + hashlib.sha256(body).hexdigest() and index.size == len(body)


def test_the_digest_is_of_the_bytes_served():
    _, body = _served("imagetools_list_4.json")
    manifest = distribution.Manifest("reg:5000/app@sha256:x", body, "application/vnd.oci.image.index.v1+json")
    assert manifest.digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert manifest.index() is not None and manifest.index().digest == manifest.digest


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode(),
        json.dumps({"mediaType": "application/vnd.oci.image.manifest.v1+json", "manifests": []}).encode(),
        json.dumps({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": "x"}).encode(),
        json.dumps({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [1]}).encode(),
        json.dumps({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"platform": "x"}]}).encode(),
    ],
)
def test_anything_but_a_list_is_left_to_imagetools(body):
    assert parse_list("reg:5000/app:1", body, "application/vnd.oci.image.index.v1+json") is None


@pytest.fixture(autouse=True)
def no_login(tmp_path, monkeypatch):
    """An empty docker config: a login on the machine running the tests (a credsStore) would
    make every registry step aside (registry.login)."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


@pytest.mark.parametrize(
    "ref", ["alpine:3.19", "docker.io/library/alpine@sha256:" + "a" * 64, "user/app:1", "Bad Ref", "reg:5000/a b:1"]
)
def test_docker_hub_and_bad_references_are_declined_without_a_request(ref):
    assert distribution._where(ref) is None


def test_the_switch_turns_the_direct_path_off(monkeypatch):
    assert distribution._where("registry.example.com/app:1") is not None
    monkeypatch.setenv(distribution.SWITCH_ENV, "off")
    assert distribution._where("registry.example.com/app:1") is None
    assert distribution.get("127.0.0.1:5000/app:1") is None
    manifest = distribution.Manifest("127.0.0.1:5000/app@sha256:x", b"{}", "application/json")
    assert distribution.put("127.0.0.1:5000/app:1", manifest) is False


def test_a_remote_registry_is_https_and_the_path_splits_host_repository_reference():
    assert distribution._where("registry.example.com:5000/team/app:1.2") == (
        "https://registry.example.com:5000",
        "team/app",
        "1.2",
    )
    digest = "sha256:" + "b" * 64
    assert distribution._where(f"ghcr.io/org/app@{digest}") == ("https://ghcr.io", "org/app", digest)


def test_an_answer_bigger_than_any_manifest_is_declined(tmp_path):
    import http.server
    import threading

    big = b"{" + b" " * distribution.MAX_MANIFEST + b"}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
            self.send_header("Content-Length", str(len(big)))
            self.end_headers()
            self.wfile.write(big)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert distribution.get(f"127.0.0.1:{server.server_address[1]}/app:1") is None
    finally:
        server.shutdown()
        server.server_close()
