"""Container inspects started ahead of `observe`, so a converged `farm up` overlaps them with loading the file.

`farm build` starts the same reads as it starts, for one question only (`drains_seen`):
whether a node is drained, before its bake may start beside the farm's check.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Iterable
from pathlib import Path

from buildkit_farm import docker
from buildkit_farm.docker import DockerRead
from buildkit_farm.docker_paths import DockerPaths, HostTLS
from buildkit_farm.farmfile import limits
from buildkit_farm.farmfile.drivers import DEFAULT_DRIVER
from buildkit_farm.farmfile.paths import resolved
from buildkit_farm.farmfile.toml import tomllib
from buildkit_farm.reconcile.names import buildx_node_name, container_name, marker_name

# What `docker container inspect` says of a name it does not find (the engine answered).
MISSING = re.compile(r"no such (container|object)", re.IGNORECASE)


def inspect_args(buildx_nodes: Iterable[str]) -> list[str]:
    """`docker container inspect` of these nodes' BuildKit containers, as `observe` makes it."""
    # Each node's drain marker rides along: no extra round trip to learn whether it is drained.
    names = [name for n in buildx_nodes for name in (container_name(n), marker_name("drain", n))]
    return ["container", "inspect", "--format", "{{json .}}", *names]


class Prefetch:
    """Container inspects started ahead of `observe`, each used once for the very same read.

    Each may be an ssh hop (0.3-0.5 s on the lab) and loading the pydantic model takes as
    long, so a converged `farm up` overlaps them: `for_file` guesses the reads from the
    file's raw TOML before the model is loaded (so that guess reads the TOML once more, on
    purpose; a tcp+TLS node's files resolved as `load_config` does); `observe` uses a result
    only for exactly the same command (a host's TLS files included), so a wrong guess costs
    nothing but a wasted read, which `discard` reaps. Start it with the lock held.
    """

    def __init__(self, paths: DockerPaths) -> None:
        self.paths = paths
        self._started: dict[tuple[object, ...], docker.PendingRead] = {}

    @classmethod
    def for_file(cls, paths: DockerPaths, farm_file: str | Path) -> Prefetch:
        try:
            text = limits.read_bounded(farm_file).decode("utf-8")  # never a FIFO, /dev/zero or a huge file
            if limits.check_text(text) is not None:
                return cls(paths)
            data = tomllib.loads(text)
            builder = data["builder"]
            if builder.get("driver", DEFAULT_DRIVER) != "docker-container":
                return cls(paths)
            base = os.path.dirname(os.path.abspath(farm_file))  # where the file's TLS paths start
            groups: dict[str, list[str]] = {}
            tls: dict[str, HostTLS] = {}
            for node in data.get("node", []):
                where = node.get("context") or node["name"]
                if not node.get("context") and node.get("endpoint") and not paths.context_meta(where).is_file():
                    where = node["endpoint"]  # a fresh runner: observe reads through the endpoint
                    if node.get("tls"):
                        tls[where] = HostTLS(*(_file(base, node["tls"].get(k)) for k in ("ca", "cert", "key")))
                groups.setdefault(where, []).append(buildx_node_name(builder["name"], node["name"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, limits.TooBig):
            return cls(paths)  # load_config, next, says what is wrong
        prefetch = cls(paths.with_host_tls(tls))
        for where, nodes in groups.items():
            prefetch.start(where, inspect_args(nodes))
        return prefetch

    def start(self, where: str | None, args: list[str]) -> None:
        self._started[self._key(self.paths, where, args)] = docker.start_read(self.paths, where, args)

    def take(self, paths: DockerPaths, where: str | None, args: list[str]) -> DockerRead | None:
        """The read started for exactly this command (the same host's TLS files too), once."""
        started = self._started.pop(self._key(paths, where, args), None)
        return started.finish() if started is not None else None

    @staticmethod
    def _key(paths: DockerPaths, where: str | None, args: list[str]) -> tuple[object, ...]:
        return (where, paths.tls_of(where), *args)

    def finish_all(self) -> list[tuple[list[str], DockerRead]]:
        """Every read nobody took, finished now: (its docker arguments, what it read)."""
        done = []
        while self._started:
            key, pending = self._started.popitem()
            done.append(([str(a) for a in key[2:]], pending.finish()))  # key: (where, TLS files, *args)
        return done

    def discard(self) -> None:
        """Reap the reads nobody took (a wrong guess)."""
        while self._started:
            _, pending = self._started.popitem()
            pending.cancel()


def docker_read(paths: DockerPaths, where: str | None, args: list[str], prefetch: Prefetch | None = None) -> DockerRead:
    """One read-only docker CLI call through the door's raw CLI (or taken from `prefetch`).

    The reads on the path of a converged `farm up` skip python-on-whales: importing it
    alone costs about 0.3 s of the 1 s budget, and its objects would re-inspect anyway.
    """
    started = prefetch.take(paths, where, args) if prefetch is not None else None
    return started if started is not None else docker.read(paths, where, args)


def _file(base: str, value: object) -> Path | None:
    """A TLS file as `load_config` resolves it (relative to the farm file's folder)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(value)  # a wrong guess is no guess: load_config says what is wrong
    return resolved(base, value)


def drains_seen(prefetch: Prefetch, buildx_nodes: Collection[str]) -> frozenset[str] | None:
    """Which of these nodes are drained, from container inspects started ahead (`Prefetch.for_file`);
    None when that is not known (a read failed, or none asked for one of the nodes)."""
    asked: set[str] = set()
    found: set[str] = set()
    for args, got in prefetch.finish_all():
        if got.returncode != 0 and not got.stdout.strip() and not MISSING.search(got.stderr):
            return None
        asked.update(args)
        found.update(json.loads(line)["Name"].lstrip("/") for line in got.stdout.splitlines() if line.strip())
    if any(container_name(n) not in asked for n in buildx_nodes):
        return None
    return frozenset(n for n in buildx_nodes if marker_name("drain", n) in found)
