"""The registry's own HTTP API (OCI distribution), for the build's hot path.

After a build, farm reads each pushed list by digest, points the tags at it and reads
the tags back. Through `docker buildx imagetools` each of those is a docker and a buildx
process (~0.1 s of CPU, more when a dozen targets finish together on two cores); here
each is one HTTP request in this process, a few milliseconds.

Only anonymous requests, and a tag only ever gets the exact bytes already pushed by
digest in its own repository. Whenever that does not apply (the user's docker config holds
a login for the registry (`registry.login`), the registry asks for credentials, Docker
Hub, TLS or the connection fails, a proxy in the way, an answer that is not a list or not
the digest asked for) the answer is None and the caller goes through `imagetools`, which
uses the login: this path makes a build faster, never different.
`FARM_REGISTRY_API=off` turns it off.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from buildkit_farm.farmfile.reference import BadReference, registry_host, repository, split_tag
from buildkit_farm.registry.access import resolve_ca, speaks_tls
from buildkit_farm.registry.index import LIST_TYPES, ImageIndex, is_loopback, parse_list
from buildkit_farm.registry.login import holds_login

SWITCH_ENV = "FARM_REGISTRY_API"
_TIMEOUT = 5.0
MAX_MANIFEST = 4 * 1024 * 1024  # the limit registries set on a manifest (distribution, OCI)
_ACCEPT = ", ".join(
    [
        *LIST_TYPES,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry serves it."""

    ref: str
    body: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.body).hexdigest()

    def index(self) -> ImageIndex | None:
        """The list it is (None: a single image, left to imagetools)."""
        return parse_list(self.ref, self.body, self.media_type)


def enabled() -> bool:
    return os.environ.get(SWITCH_ENV, "").strip().lower() not in {"off", "0", "false", "no"}


def get(ref: str, *, ca: str | Path | None = None, docker_config: str | Path | None = None) -> Manifest | None:
    """The manifest `ref` names, read anonymously; None when this path does not apply.

    `ca`: a CA to trust besides the system's (default `$FARM_REGISTRY_CA`). `docker_config`:
    the config whose logins count (a login for the registry: None). A by-digest answer is
    returned only if its bytes hash to that digest.
    """
    where = _where(ref, docker_config)
    if where is None:
        return None
    base, path, reference = where
    request = urllib.request.Request(f"{base}/v2/{path}/manifests/{reference}", headers={"Accept": _ACCEPT})
    answer = _send(request, ca)
    if answer is None or answer[0] != 200:
        return None
    _, body, media_type = answer
    manifest = Manifest(ref, body, media_type.split(";", 1)[0].strip())
    if "@" in ref and manifest.digest != reference:  # another algorithm than sha256 is left to imagetools too
        return None
    return manifest


def put(tag: str, manifest: Manifest, *, ca: str | Path | None = None, docker_config: str | Path | None = None) -> bool:
    """Push `manifest`'s exact bytes under `tag` (same repository); False when this path does not apply."""
    where = _where(tag, docker_config)
    if where is None or "@" in tag:
        return False
    base, path, reference = where
    request = urllib.request.Request(
        f"{base}/v2/{path}/manifests/{reference}",
        data=manifest.body,
        method="PUT",
        headers={"Content-Type": manifest.media_type},
    )
    answer = _send(request, ca)
    return answer is not None and answer[0] == 201


def _where(ref: str, docker_config: str | Path | None = None) -> tuple[str, str, str] | None:
    """(base URL, repository path, tag or digest) for `ref`; None for Docker Hub, a bad ref or
    a registry the user logged in to."""
    if not enabled():
        return None
    host = registry_host(ref)
    if host == "docker.io":  # always token auth: imagetools' business
        return None
    if holds_login(host, docker_config):  # the user's credentials apply: imagetools speaks with them
        return None
    try:
        name = repository(ref)
    except BadReference:
        return None
    reference = ref.rsplit("@", 1)[1] if "@" in ref else split_tag(ref)[1]
    return f"{_scheme(host)}://{host}", name[len(host) + 1 :], reference


_schemes: dict[str, str] = {}
_lock = threading.Lock()


def _scheme(host: str) -> str:
    # buildx speaks http to a loopback registry unless it answers TLS (registry.access);
    # everything else is https.
    if not is_loopback(host):
        return "https"
    with _lock:
        if host not in _schemes:
            _schemes[host] = "https" if speaks_tls(host) else "http"
        return _schemes[host]


def _send(request: urllib.request.Request, ca: str | Path | None) -> tuple[int, bytes, str] | None:
    where = urllib.parse.urlsplit(request.full_url)
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if where.scheme == "https":
        handlers.append(urllib.request.HTTPSHandler(context=_tls(resolve_ca(ca))))
    if is_loopback(where.netloc):
        handlers.append(urllib.request.ProxyHandler({}))  # as Go does: loopback is never proxied
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=_TIMEOUT) as response:
            body = response.read(MAX_MANIFEST + 1)
            if len(body) > MAX_MANIFEST:  # no manifest is that big: a registry this path should not trust
                return None
            return response.status, body, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        err.close()
        return err.code, b"", ""
    except (OSError, http.client.HTTPException, ValueError, ssl.SSLError):
        return None


_contexts: dict[Path | None, ssl.SSLContext] = {}


def _tls(ca: Path | None) -> ssl.SSLContext:
    # Loading the system trust store costs ~30 ms: once per CA and process.
    with _lock:
        if ca not in _contexts:
            context = ssl.create_default_context()
            if ca is not None and ca.is_dir():
                context.load_verify_locations(capath=str(ca))
            elif ca is not None:
                context.load_verify_locations(cafile=str(ca))
            _contexts[ca] = context
        return _contexts[ca]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A manifest is served where it is asked for; a redirect is left to imagetools.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None
