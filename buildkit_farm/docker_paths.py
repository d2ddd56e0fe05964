"""What the door's command lines are made from: the Docker CLI's and buildx's folders for this
run, and how a `tcp://` host is reached before a context for it exists (its client TLS files).

Plain data, no process: `buildkit_farm.docker` (the door) turns it into `docker --config DIR
[--host URL --tlsverify …]`, and `reconcile.observe` names the hosts from the farm file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

RECORD_DIR = "buildkit-farm"


@dataclass(frozen=True)
class HostTLS:
    """A `tcp://` engine's client TLS files, as a context made from the farm file holds them."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @property
    def given(self) -> tuple[str, str, str]:
        """(ca, cert, key) as docker's `--tlscacert`, `--tlscert`, `--tlskey` take them. A file not
        given is "", as in a context without it (the system's CAs, no client certificate), never
        docker's default ~/.docker/{ca,cert,key}.pem. Paths only: a key's content is never read."""
        return (str(self.ca or ""), str(self.cert or ""), str(self.key or ""))


@dataclass(frozen=True)
class DockerPaths:
    """Where the Docker CLI and buildx keep their state for this run, and the client TLS files
    of the hosts it reaches by URL (`host_tls`, a node's `tcp://` engine before its context exists)."""

    docker_config: Path  # --docker-config, else $DOCKER_CONFIG, else ~/.docker
    buildx_config: Path  # $BUILDX_CONFIG, else <docker_config>/buildx
    explicit: bool  # --docker-config given: pass `--config DIR` to docker
    host_tls: tuple[tuple[str, HostTLS], ...] = ()  # hosts read by URL (no context yet) that need client TLS

    @classmethod
    def resolve(cls, docker_config: str | Path | None = None) -> DockerPaths:
        explicit = docker_config is not None
        if docker_config is None:
            docker_config = os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker"
        dc = Path(docker_config).expanduser().absolute()
        bx = os.environ.get("BUILDX_CONFIG")
        return cls(dc, Path(bx).expanduser().absolute() if bx else dc / "buildx", explicit)

    @property
    def farm_dir(self) -> Path:
        return self.docker_config / RECORD_DIR

    @property
    def config_arg(self) -> str | None:
        """The `--config` value docker is given (None: its own default)."""
        return str(self.docker_config) if self.explicit else None

    def with_host_tls(self, hosts: Mapping[str, HostTLS]) -> DockerPaths:
        """These paths, reaching each of `hosts` (a `tcp://` URL) with its client TLS files."""
        return replace(self, host_tls=tuple(sorted(hosts.items())))

    def tls_of(self, where: str | None) -> HostTLS | None:
        return dict(self.host_tls).get(where) if where else None

    def record_file(self, builder: str) -> Path:
        return self.farm_dir / f"{builder.lower()}.json"

    def instance_file(self, builder: str) -> Path:
        return self.buildx_config / "instances" / builder.lower()

    def context_meta(self, name: str) -> Path:
        return self.docker_config / "contexts" / "meta" / _context_dir(name) / "meta.json"

    def context_tls(self, name: str) -> Path:
        return self.docker_config / "contexts" / "tls" / _context_dir(name) / "docker"


def _context_dir(name: str) -> str:
    # The Docker CLI stores a context under the sha256 of its name.
    return hashlib.sha256(name.encode()).hexdigest()
