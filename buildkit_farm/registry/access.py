"""How farm reaches a registry: which CA to trust, whether it speaks TLS, and the calls set up for it.

The buildx client reads the system certificates, so a CA given with `ca=` (or
`$FARM_REGISTRY_CA`) is handed to it through `SSL_CERT_DIR`. buildx speaks plain http to any
loopback registry unless a builder's buildkitd config says `http = false`; for a loopback
registry that answers TLS (the lab's 127.0.0.1:5443) and no builder given, a throw-away
builder record carrying that setting is made in a private `BUILDX_CONFIG` (no container is
started: imagetools only reads the record's config). Every docker call goes through
`buildkit_farm.docker`, the one door.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from buildkit_farm import docker
from buildkit_farm.errors import RegistryError, UsageError
from buildkit_farm.farmfile.reference import registry_host, split_host
from buildkit_farm.registry.index import CA_ENV, is_loopback

__all__ = ["CA_ENV", "Reach", "cert_env", "reach", "resolve_ca", "session", "speaks_tls"]

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


@dataclass(frozen=True)
class Reach:
    """How one session reaches its registries: the Docker config, the environment every
    call carries (SSL_CERT_DIR, a private BUILDX_CONFIG) and the builder to name."""

    paths: docker.DockerPaths
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    builder: str | None = None

    def inspect(self, ref: str) -> str:
        """The registry's answer for `ref` (imagetools' JSON); DockerFailed when it has none."""
        return docker.imagetools_inspect(self.paths, ref, builder=self.builder, env=self.env)

    def create(self, sources: Sequence[str], tags: Sequence[str]) -> None:
        """Push one list made of `sources` under every tag."""
        docker.imagetools_create(self.paths, sources, tags, builder=self.builder, env=self.env)


def reach(
    *, docker_config: str | Path | None = None, env: Mapping[str, str] | None = None, builder: str | None = None
) -> Reach:
    """A Reach for this Docker config, every call carrying `env` (e.g. SSL_CERT_DIR)."""
    return Reach(docker.DockerPaths.resolve(docker_config), MappingProxyType(dict(env or {})), builder)


@contextmanager
def session(
    refs: Sequence[str], *, ca: str | Path | None, docker_config: str | Path | None, builder: str | None
) -> Iterator[Reach]:
    """A Reach (and the builder it names) able to reach every registry of `refs`."""
    with ExitStack() as stack:
        env = dict(stack.enter_context(cert_env(ca)))
        if builder is None:
            tls_hosts = sorted({h for h in map(registry_host, refs) if is_loopback(h) and speaks_tls(h)})
            if tls_hosts:
                env["BUILDX_CONFIG"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="farm-buildx-"))
                builder = _scratch_builder(reach(docker_config=docker_config, env=env), tls_hosts)
        yield reach(docker_config=docker_config, env=env, builder=builder)


def _scratch_builder(where: Reach, tls_hosts: Sequence[str]) -> str:
    """Record a builder (never started) whose config tells buildx to use https for `tls_hosts`."""
    config = Path(where.env["BUILDX_CONFIG"]) / "buildkitd.toml"
    config.write_text("".join(f'[registry."{h}"]\n  http = false\n' for h in tls_hosts))
    try:
        docker.record_builder(where.paths, _SCRATCH_BUILDER, config, env=where.env)
    except docker.DockerFailed as err:
        raise RegistryError(
            f"could not prepare buildx to speak https to {', '.join(tls_hosts)}: {docker.last_lines(err.stderr)}",
            hint="buildx records a builder for this; check that the Docker engine answers",
        ) from None
    return _SCRATCH_BUILDER
