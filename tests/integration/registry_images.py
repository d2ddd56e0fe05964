"""Put small, real images into the lab's registries over the registry HTTP API.

Used where a test needs an image buildx cannot make here: a Windows image (with
`os.version`) to stitch beside Linux ones, or a second image of a platform that already
exists (to provoke a platform clash). The blobs and manifests are real; nothing is mocked.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import ssl
import tarfile
import urllib.request
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(marker: str) -> tuple[bytes, str]:
    """A gzipped tar holding one file; returns (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        body = f"{marker}\n".encode()
        info = tarfile.TarInfo("marker.txt")
        info.size, info.mtime = len(body), 0
        tar.addfile(info, io.BytesIO(body))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), _sha(tar_bytes)


def _request(url: str, method: str, body: bytes = b"", headers: dict | None = None, ca: Path | None = None):
    context = ssl.create_default_context(cafile=str(ca)) if ca and url.startswith("https") else None
    req = urllib.request.Request(url, data=body if method != "GET" else None, method=method, headers=headers or {})
    return urllib.request.urlopen(req, context=context, timeout=10)


def _push_blob(base: str, repo: str, data: bytes, ca: Path | None) -> str:
    digest = _sha(data)
    with _request(f"{base}/v2/{repo}/blobs/uploads/", "POST", ca=ca) as resp:
        location = resp.headers["Location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    headers = {"Content-Type": "application/octet-stream"}
    with _request(f"{location}{sep}digest={digest}", "PUT", data, headers, ca=ca):
        pass
    return digest


def push_image(
    registry: str,
    repo: str,
    tag: str,
    *,
    os: str,
    arch: str,
    variant: str | None = None,
    os_version: str | None = None,
    marker: str = "",
    ca: Path | None = None,
) -> str:
    """Push a one-layer OCI image of the given platform to `registry/repo:tag`; return its digest."""
    base = f"{'https' if ca else 'http'}://{registry}"
    layer, diff_id = _layer(marker or f"{repo}:{tag}")
    config: dict = {
        "architecture": arch,
        "os": os,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "config": {"Cmd": ["cmd", "/S", "/C", "ver"] if os == "windows" else ["sh"]},
    }
    if variant:
        config["variant"] = variant
    if os_version:
        config["os.version"] = os_version
    config_bytes = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _push_blob(base, repo, config_bytes, ca),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": _push_blob(base, repo, layer, ca),
                "size": len(layer),
            }
        ],
    }
    body = json.dumps(manifest, indent=2).encode()
    with _request(f"{base}/v2/{repo}/manifests/{tag}", "PUT", body, {"Content-Type": OCI_MANIFEST}, ca=ca):
        pass
    return _sha(body)


def copy_manifest(registry: str, src_repo: str, digest: str, dst_repo: str, tag: str, *, ca: Path | None = None) -> str:
    """Put the single manifest `src_repo@digest` under `dst_repo:tag` as is (same digest):
    its blobs are mounted across repositories, then the manifest bytes are pushed."""
    base = f"{'https' if ca else 'http'}://{registry}"
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    with _request(f"{base}/v2/{src_repo}/manifests/{digest}", "GET", headers={"Accept": accept}, ca=ca) as resp:
        body, media_type = resp.read(), resp.headers["Content-Type"]
    manifest = json.loads(body)
    for blob in [manifest["config"], *manifest["layers"]]:
        url = f"{base}/v2/{dst_repo}/blobs/uploads/?mount={blob['digest']}&from={src_repo}"
        with _request(url, "POST", ca=ca) as resp:
            assert resp.status == 201, f"blob {blob['digest']} was not mounted ({resp.status})"
    with _request(f"{base}/v2/{dst_repo}/manifests/{tag}", "PUT", body, {"Content-Type": media_type}, ca=ca):
        pass
    return _sha(body)
