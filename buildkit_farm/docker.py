"""The one door to Docker: where its state lives, and how a client or a docker argv is made.

Every Docker client (python-on-whales) and every `docker …` command line in farm is made
here, so `--docker-config`, the context or host, and extra environment (a registry CA) are
applied the same way everywhere. The rule of the house, which this module makes possible:
- Docker is *read* only by `reconcile.observe` (engines, contexts, builders),
  `registry.read` (registries), the build's checks and `farmfile.bake` (bake --print);
- Docker is *changed* only by `reconcile.apply` (contexts, builder, BuildKit containers)
  and the build's run and publish steps (images, lists).
Nothing here runs a command on its own behalf; python-on-whales is imported lazily, so the
commands that never talk to Docker never pay for it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from python_on_whales import DockerClient

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


def client(paths: DockerPaths, where: str | None = None, *, env: Mapping[str, str] | None = None) -> DockerClient:
    """A python-on-whales client bound to this Docker config, a context or host, and `env`.

    buildx stores a node's endpoint as a context name, or as a host URL for the default
    context; both are accepted. `env` (e.g. `SSL_CERT_DIR`) is set on every call it makes.
    """
    from python_on_whales import DockerClient

    call = ["env", *(f"{k}={v}" for k, v in sorted(env.items())), "docker"] if env else ["docker"]
    if where and "://" in where:
        return DockerClient(config=paths.config_arg, host=where, client_call=call)
    return DockerClient(config=paths.config_arg, context=where, client_call=call)


def argv(paths: DockerPaths, where: str | None = None, *, program: str | None = None) -> list[str]:
    """`docker [--config DIR] [--context NAME | --host URL]`: the start of every docker command line.

    `program` replaces the resolved docker binary (e.g. plain "docker" in text for people).
    """
    cmd = [program or shutil.which("docker") or "docker"]
    if paths.explicit:
        cmd += ["--config", str(paths.docker_config)]
    if where:
        cmd += ["--host" if "://" in where else "--context", where]
    return cmd


def run(
    paths: DockerPaths, args: Sequence[str], *, where: str | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Run `docker … ARGS` through python-on-whales' runner: its stdout, or its `DockerException`."""
    from python_on_whales.utils import run as pow_run

    return str(pow_run(client(paths, where, env=env).client_config.docker_cmd + list(args)))


@dataclass(frozen=True)
class DockerRead:
    """The outcome of one read-only docker CLI call."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        """docker's own message: the last line of stderr."""
        return last_lines(self.stderr, 1) or f"docker exited with code {self.returncode}"


def read(
    paths: DockerPaths,
    where: str | None,
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> DockerRead:
    """One read-only docker CLI call straight through subprocess (never raises on exit codes).

    The reads on the path of a converged `farm up` skip python-on-whales: importing it
    alone costs about 0.3 s, and its objects would re-inspect anyway. `cwd` and `env`
    (added to this process's environment) are for `buildx bake --print`.
    """
    proc = subprocess.run(
        argv(paths, where) + list(args),
        capture_output=True,
        text=True,
        errors="replace",
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env={**os.environ, **env} if env else None,
    )
    return DockerRead(proc.returncode, proc.stdout, proc.stderr)


def start_read(paths: DockerPaths, where: str | None, args: Sequence[str]) -> subprocess.Popen[str]:
    """The same read, started in the background; `finish_read` collects it."""
    return subprocess.Popen(
        argv(paths, where) + list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    )


def finish_read(proc: subprocess.Popen[str]) -> DockerRead:
    out, err = proc.communicate()
    return DockerRead(proc.returncode, out, err)


def last_lines(text: str | None, n: int = 3, *, sep: str = " / ") -> str:
    """The last `n` meaningful lines of a command's output: docker's own message.

    Blank lines and BuildKit's `#N` progress lines are skipped; buildx's `ERROR: ` prefix goes.
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip() and not line.startswith("#")]
    return sep.join(line.removeprefix("ERROR: ") for line in lines[-n:])


def failure_detail(err: BaseException) -> str:
    """What a python-on-whales `DockerException` says: its last lines, else its exit code."""
    text = (getattr(err, "stderr", None) or "").strip() or (getattr(err, "stdout", None) or "").strip()
    return last_lines(text) or f"exit code {getattr(err, 'return_code', '?')}"


def attempt(paths: DockerPaths, where: str | None, args: Sequence[str]) -> DockerRead:
    """One docker command that changes something, whose failure is an answer rather than an
    error: creating a marker container whose name is taken means someone else holds it."""
    return read(paths, where, args)
