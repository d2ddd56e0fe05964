"""The buildx verbs of `farm up`, one function per verb, each one argv through the door (`docker.run`).

- `context update`;
- `buildx create` with `--node`, `--append` and `--leave` (no re-inspect afterwards, which
  would contact every node);
- `buildx rm --keep-state`;
- `buildx inspect --bootstrap` (no extra `buildx ls` round trip to every node).

Failures are the door's `DockerFailed` (command, exit code, stdout, stderr) like everywhere
else; the buildx verbs may start BuildKit on every node, so they wait the door's SLOW bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from buildkit_farm import docker
from buildkit_farm.docker import DockerPaths


def _run(paths: DockerPaths, args: list[str]) -> str:
    return docker.run(paths, args, timeout=docker.SLOW if args[0] == "buildx" else docker.QUICK)


def context_update(
    paths: DockerPaths,
    name: str,
    *,
    description: str,
    host: str,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> None:
    """Point an existing context at a new endpoint/TLS material, in place."""
    docker = [f"host={host}"]
    docker += [f"{k}={v}" for k, v in (("ca", ca), ("cert", cert), ("key", key)) if v is not None]
    _run(paths, ["context", "update", name, "--description", description, "--docker", ",".join(docker)])


def buildx_create(
    paths: DockerPaths,
    *,
    builder: str,
    node: str,
    endpoint: str,
    driver: str | None = None,
    append: bool = False,
    platforms: Iterable[str] = (),
    driver_opts: Iterable[tuple[str, str]] = (),
    buildkitd_flags: str | None = None,
    buildkitd_config: Path | None = None,
) -> None:
    """`buildx create [--append] --name B --node N ... ENDPOINT`: create, join, or update a node in place."""
    args = ["buildx", "create", "--name", builder, "--node", node]
    if append:
        args.append("--append")
    if driver:
        args += ["--driver", driver]
    for p in platforms:
        args += ["--platform", p]
    for k, v in driver_opts:
        args += ["--driver-opt", f"{k}={v}"]
    if buildkitd_flags:
        args += ["--buildkitd-flags", buildkitd_flags]
    if buildkitd_config is not None:
        args += ["--buildkitd-config", str(buildkitd_config)]
    if endpoint:  # the kubernetes driver takes none
        args.append(endpoint)
    _run(paths, args)


def buildx_leave(paths: DockerPaths, *, builder: str, node: str) -> None:
    """`buildx create --leave`: the node leaves the builder (buildx leaves its container running)."""
    _run(paths, ["buildx", "create", "--leave", "--name", builder, "--node", node])


def buildx_rm(paths: DockerPaths, builder: str, *, keep_state: bool) -> None:
    """`buildx rm [--keep-state]`: remove the builder and its BuildKit containers."""
    _run(paths, ["buildx", "rm", *(["--keep-state"] if keep_state else []), builder])


def buildx_bootstrap(paths: DockerPaths, builder: str) -> str:
    """`buildx inspect --bootstrap`: start every node's BuildKit that is not running."""
    return _run(paths, ["buildx", "inspect", "--bootstrap", builder])
