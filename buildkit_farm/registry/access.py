"""How farm reaches a registry: which CA to trust, whether it speaks TLS, and a client set up for it.

The buildx client reads the system certificates, so a CA given with `ca=` (or
`$FARM_REGISTRY_CA`) is handed to it through `SSL_CERT_DIR`. buildx speaks plain http to any
loopback registry unless a builder's buildkitd config says `http = false`; for a loopback
registry that answers TLS (the lab's 127.0.0.1:5443) and no builder given, a throw-away
builder record carrying that setting is made in a private `BUILDX_CONFIG` (no container is
started: imagetools only reads the record's config). Every client comes from
`buildkit_farm.docker`, the one door.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from buildkit_farm import docker
from buildkit_farm.docker import last_lines
from buildkit_farm.errors import RegistryError, UsageError
from buildkit_farm.farmfile.reference import registry_host, split_host
from buildkit_farm.registry.index import CA_ENV, is_loopback

if TYPE_CHECKING:  # python_on_whales is imported lazily, where Docker is called
    from python_on_whales import DockerClient

__all__ = ["CA_ENV", "cert_env", "docker_client", "resolve_ca", "session", "speaks_tls"]

_PROBE_TIMEOUT = 2.0
_SCRATCH_BUILDER = "farm-registry"


def resolve_ca(ca: str | Path | None) -> Path | None:
    """The CA to trust: `ca`, else `$FARM_REGISTRY_CA`; checked to exist (exit 2 if not)."""
    value = ca if ca not in (None, "") else os.environ.get(CA_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        return path
    if not path.is_file():
        raise UsageError(f"CA file {path} does not exist", hint=f"give a PEM file with --ca FILE or ${CA_ENV}")
    try:
        head = path.read_text(errors="replace")
    except OSError as err:
        raise UsageError(f"CA file {path} cannot be read: {err.strerror}") from None
    if "-----BEGIN CERTIFICATE-----" not in head:
        raise UsageError(f"CA file {path} holds no PEM certificate", hint="give the CA certificate (ca.pem), not a key")
    return path


@contextmanager
def cert_env(ca: str | Path | None) -> Iterator[dict[str, str]]:
    """Environment for a docker/buildx client call so that it trusts `ca` as well.

    The buildx client (Go) reads every file of each `SSL_CERT_DIR` directory; the system
    directory stays first so public registries keep working. A CA file is copied into a
    private temporary directory for the call's duration (it is a public certificate).
    """
    path = resolve_ca(ca)
    if path is None:
        yield {}
        return
    base = os.environ.get("SSL_CERT_DIR") or "/etc/ssl/certs"
    if path.is_dir():
        yield {"SSL_CERT_DIR": f"{base}:{path}"}
        return
    with tempfile.TemporaryDirectory(prefix="farm-ca-") as tmp:
        shutil.copyfile(path, Path(tmp) / "farm-registry-ca.pem")
        yield {"SSL_CERT_DIR": f"{base}:{tmp}"}


def speaks_tls(host: str) -> bool:
    """True if the registry at `host` answers a TLS handshake (certificate not checked:
    this only tells https from http; buildx checks the certificate afterwards)."""
    name, port = split_host(host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no trust store to load: nothing is verified
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((name, port or 443), timeout=_PROBE_TIMEOUT) as sock,
            context.wrap_socket(sock, server_hostname=name),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


def docker_client(*, docker_config: str | Path | None = None, env: dict[str, str] | None = None) -> DockerClient:
    """A client for registry calls: this Docker config, every call carrying `env` (e.g. SSL_CERT_DIR)."""
    return docker.client(docker.DockerPaths.resolve(docker_config), env=env)


@contextmanager
def session(
    refs: Sequence[str], *, ca: str | Path | None, docker_config: str | Path | None, builder: str | None
) -> Iterator[tuple[DockerClient, str | None]]:
    """A client (and the builder to name) able to reach every registry of `refs`."""
    with ExitStack() as stack:
        env = dict(stack.enter_context(cert_env(ca)))
        if builder is None:
            tls_hosts = sorted({h for h in map(registry_host, refs) if is_loopback(h) and speaks_tls(h)})
            if tls_hosts:
                env["BUILDX_CONFIG"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="farm-buildx-"))
                builder = _scratch_builder(
                    docker_client(docker_config=docker_config, env=env), tls_hosts, env["BUILDX_CONFIG"]
                )
        yield docker_client(docker_config=docker_config, env=env), builder


def _scratch_builder(client: DockerClient, tls_hosts: Sequence[str], where: str) -> str:
    """Record a builder (never started) whose config tells buildx to use https for `tls_hosts`."""
    from python_on_whales.exceptions import DockerException

    config = Path(where) / "buildkitd.toml"
    config.write_text("".join(f'[registry."{h}"]\n  http = false\n' for h in tls_hosts))
    try:
        client.buildx.create(name=_SCRATCH_BUILDER, driver="docker-container", config=config)
    except DockerException as err:
        raise RegistryError(
            f"could not prepare buildx to speak https to {', '.join(tls_hosts)}: {last_lines(err.stderr or '')}",
            hint="buildx records a builder for this; check that the Docker engine answers",
        ) from None
    return _SCRATCH_BUILDER
