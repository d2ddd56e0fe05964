"""The real causes behind Docker's and BuildKit's most common error texts, as hints.

Pure functions of an error's text (and what the farm file says): no IO. The reconciler asks
`engine_hint` when a node's engine does not answer; the build asks `push_hint` when a push
fails; `farm validate` asks `is_loopback_registry` to warn before anything runs.
"""

from __future__ import annotations

import re

_LOOPBACK = re.compile(r"(?:localhost|127(?:\.[0-9]{1,3}){3}|\[::1\])(?::[0-9]+)?", re.ASCII | re.IGNORECASE)
_DIAL = re.compile(r"dial tcp (?P<addr>\S+?):(?P<port>[0-9]+): connect: connection refused", re.ASCII)
_REGISTRY = re.compile(r"https?://(?P<host>[^/\s\"]+)/v2/", re.ASCII)
NETWORK_HOST = 'driver_opts = { network = "host" } in [builder]'
# "failed to push REPO[:TAG]: ..." (BuildKit's exporter), and the /v2/REPO/ of a refused request.
_PUSHED = re.compile(r"failed to push (?P<ref>[^\s\"]+?):\s", re.ASCII)
_V2_REPO = re.compile(r"https?://(?P<host>[^/\s\"]+)/v2/(?P<repo>[^\s\"]+?)/(?:blobs|manifests|tags)/", re.ASCII)
_NO_CREDENTIALS = ("401 unauthorized", "no basic auth credentials", "authentication required", "anonymous token")
_NOT_ALLOWED = ("403 forbidden", "insufficient_scope", "denied:", "requested access to the resource is denied")


def refused_push(detail: str) -> tuple[str, str, bool] | None:
    """(registry, repository, for want of credentials) when the registry refused a push; else None.

    For want of credentials: it answered 401 (no login, or a wrong one); otherwise the account
    may not push there (403, insufficient_scope, denied)."""
    low = detail.lower()
    wanted = any(s in low for s in _NO_CREDENTIALS)
    if not wanted and not any(s in low for s in _NOT_ALLOWED):
        return None
    pushed, request = _PUSHED.search(detail), _V2_REPO.search(detail)
    if pushed:
        name = pushed["ref"]
        last = name.rsplit("/", 1)[-1]
        name = name[: len(name) - len(last)] + last.split(":", 1)[0] if "/" in name else name.split(":", 1)[0]
        first, slash, _ = name.partition("/")
        is_host = slash and ("." in first or ":" in first or first == "localhost")
        registry = first if is_host else "docker.io"
        return registry, name, wanted
    if request:
        return request["host"], f"{request['host']}/{request['repo']}", wanted
    return None


def is_loopback_registry(ref: str) -> bool:
    """True for an image reference whose registry is this machine's loopback (localhost:5000/app)."""
    first, slash, _ = ref.partition("/")
    return bool(slash) and _LOOPBACK.fullmatch(first) is not None


def engine_hint(detail: str, endpoint: str | None) -> str | None:
    """What to check when an engine did not answer, read from the error (ssh, socket, TLS)."""
    low = detail.lower()
    where = endpoint or "the endpoint"
    hint = _ssh_hint(low, where) or _tls_hint(low)
    if hint:
        return hint
    if "ssh" in low:
        return (
            f"check that sshd answers at {where} and that `ssh` to it works non-interactively "
            "(BatchMode); then rerun `farm up`"
        )
    if "permission denied" in low and "sock" in low:
        return "the user may not use that Docker socket: add it to the docker group (and log in again), or use sudo"
    if "no such file" in low or "cannot connect" in low:
        return "is that Docker engine running, and is the socket path right? then rerun `farm up`"
    if "tls" in low or "certificate" in low or "x509" in low:
        return "check the node's tls.ca/cert/key against the engine's certificates; then rerun `farm up`"
    if "connection reset by peer" in low and (endpoint or "").startswith("tcp://"):
        # TLS 1.3 engines refuse a client certificate after the handshake: often only a reset shows
        return (
            "the engine closed the TLS connection: it may refuse the client certificate; "
            "check the node's tls.ca/cert/key against the engine's certificates; then rerun `farm up`"
        )
    return None


def _ssh_hint(low: str, where: str) -> str | None:
    if "host key verification failed" in low or "host key is known" in low or "no host key" in low:
        return (
            f"ssh does not know the host key of {where}: connect once with `ssh` to check and accept it "
            "(it is then in ~/.ssh/known_hosts), or add it with `ssh-keyscan`; then rerun `farm up`"
        )
    if "remote host identification has changed" in low:
        return (
            f"the host key of {where} differs from the one in ~/.ssh/known_hosts: if the machine was "
            "reinstalled, remove the old key with `ssh-keygen -R HOST`; otherwise do not connect"
        )
    if "permission denied (publickey" in low:
        return f"ssh refused the key for {where}: load it in ssh-agent or name it in ~/.ssh/config (IdentityFile)"
    return None


def _tls_hint(low: str) -> str | None:
    if "unknown authority" in low:
        return (
            "the engine's certificate is not signed by the node's tls.ca: point tls.ca at the CA that "
            "signed the engine's certificate; then rerun `farm up`"
        )
    if "certificate required" in low:
        return "the engine wants a client certificate: set the node's tls.cert and tls.key"
    if "http request to an https server" in low:
        return "the engine speaks TLS: give the node tls = { ca = ..., cert = ..., key = ... }"
    return None


def push_hint(detail: str, *, driver: str = "docker-container", host_network: bool = False) -> str | None:
    """Why BuildKit could not reach or push to a registry, from its log; None when unknown.

    `host_network`: every node runs BuildKit with `network = "host"` (its loopback is then
    the engine's own)."""
    low = detail.lower()
    dial = _DIAL.search(detail)
    if dial and _LOOPBACK.fullmatch(dial["addr"]) and driver == "docker-container" and not host_network:
        return (
            f"BuildKit runs in a container whose {dial['addr']} is its own loopback, not this machine's, so "
            f"the registry seemed down although it is up: set {NETWORK_HOST}, then `farm up`"
        )
    if "server gave http response to https client" in low:
        registry = _REGISTRY.search(detail)
        host = registry["host"] if registry else "HOST:PORT"
        return (
            f"the registry speaks plain http: tell BuildKit with buildkitd_config = "
            f'{{ registry = {{ "{host}" = {{ http = true }} }} }} in [builder], then `farm up`'
        )
    if "unknown authority" in low:
        return (
            "BuildKit does not trust the registry's certificate: add its CA in the buildkitd config "
            '([registry."HOST:PORT"] ca = ["/path/ca.pem"]), then `farm up`'
        )
    refused = refused_push(detail)
    if refused:
        host, name, wanted = refused
        if wanted:
            return f"registry {host} wants credentials to push {name}: run `docker login {host}` first"
        return f"registry {host} refused the push to {name}: `docker login {host}` with an account that may push there"
    if "401 unauthorized" in low or "insufficient_scope" in low or "denied:" in low:
        return "the registry refused the push: `docker login` to it with an account that may push there"
    if dial or "no such host" in low:
        return "the registry did not answer: start it or fix the tag's host:port"
    return None


# A registry's or network's passing trouble while BuildKit pushed. Seen on the lab: a target
# built again right after bake cancelled it pushed the same manifest while the cancelled push
# of it was still winding down in the same BuildKit; both share one push status (containerd
# keys it by digest), the new PUT went out cut, and the registry answered 400 "digest invalid".
# containerd's message drops the registry's body, so a 400 on committing a pushed ref is taken
# as that. 5xx and 429 are the registry's own "later". Refusals (401/403, bad certificate, no
# such host, refused connection) fail again the same way: never these.
_PUSHING = ("failed to push", "failed commit on ref", "pushing layers", "pushing manifest", "/v2/")
_TRANSIENT_STATUS = re.compile(r"\b(?:429 too many requests|5(?:00|02|03|04) [a-z ]+)\b")
_CUT_COMMIT = re.compile(r'failed commit on ref "[a-z]+-sha256:[0-9a-f]+": unexpected status[^\n]*: 400 bad request')
_TRANSIENT = (
    "provided digest did not match uploaded content",
    "digest invalid",
    "unexpected commit digest",
    "connection reset by peer",
    "broken pipe",
    "unexpected eof",
    "i/o timeout",
    "tls handshake timeout",
    "http2: server sent goaway",
    "client connection lost",
)


def transient_push(detail: str) -> bool:
    """True when a build failed while pushing for a reason that passes (a registry's 5xx or
    429, a cut connection, a manifest's digest gone wrong on the way): worth one more push."""
    low = detail.lower()
    if not any(s in low for s in _PUSHING) or refused_push(detail) or "unknown authority" in low:
        return False
    if "no such host" in low or "connection refused" in low or "manifest invalid" in low:
        return False
    return bool(_TRANSIENT_STATUS.search(low) or _CUT_COMMIT.search(low)) or any(s in low for s in _TRANSIENT)
