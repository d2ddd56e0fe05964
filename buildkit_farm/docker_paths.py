"""What the door's command lines are made from: the Docker CLI's and buildx's folders for this run.

Plain data, no process: `buildkit_farm.docker` (the door) turns it into `docker --config DIR …`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

RECORD_DIR = "buildkit-farm"


@dataclass(frozen=True)
class DockerPaths:
    """Where the Docker CLI and buildx keep their state for this run."""

    docker_config: Path  # --docker-config, else $DOCKER_CONFIG, else ~/.docker
    buildx_config: Path  # $BUILDX_CONFIG, else <docker_config>/buildx
    explicit: bool  # --docker-config given: pass `--config DIR` to docker

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
