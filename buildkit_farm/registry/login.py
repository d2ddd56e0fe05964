"""Which registries the user's docker config holds a login for (`docker login`).

The docker config is the one every docker and buildx call of farm is given:
`--docker-config`, else `$DOCKER_CONFIG`, else `~/.docker` (`docker.DockerPaths`). buildx
and imagetools read its `auths`, `credsStore` and `credHelpers` themselves; this module only
answers "is there a login that may apply to HOST?", so that farm's own HTTP path
(`registry.distribution`) steps aside and the registry is spoken to with the user's
credentials. No secret is read into a value here: only the keys of the config are looked at.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from buildkit_farm.docker import DockerPaths

# Docker Hub's names, as `docker login` writes them.
_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"}


def config_file(docker_config: str | Path | None) -> Path:
    """The config.json whose logins apply to this run."""
    return DockerPaths.resolve(docker_config).docker_config / "config.json"


def holds_login(host: str, docker_config: str | Path | None = None) -> bool:
    """True when the docker config may hold credentials for `host`: an `auths` entry or a
    `credHelpers` entry for it, or a `credsStore` (which may hold any registry)."""
    path = config_file(docker_config)
    try:
        stat = path.stat()
    except OSError:
        return False
    hosts = _login_hosts(str(path), stat.st_mtime_ns, stat.st_size)
    return "*" in hosts or _host_key(host) in hosts


@lru_cache(maxsize=16)
def _login_hosts(path: str, _mtime: int, _size: int) -> frozenset[str]:
    """The hosts the config names logins for ("*" for a credential store); cached per file version."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return frozenset({"*"})  # unreadable: assume a login, so nothing is spoken to anonymously
    if not isinstance(data, dict):
        return frozenset({"*"})
    hosts = set()
    if data.get("credsStore"):
        hosts.add("*")
    for section in ("auths", "credHelpers"):
        entries = data.get(section)
        if isinstance(entries, dict):
            hosts.update(_host_key(key) for key in entries if isinstance(key, str))
    return frozenset(hosts)


def _host_key(name: str) -> str:
    """`https://host:port/v1/` and `host:port` alike -> `host:port`; Docker Hub's names -> docker.io."""
    if name in _HUB:
        return "docker.io"
    bare = name.split("://", 1)[-1].split("/", 1)[0].lower()
    return "docker.io" if bare in _HUB else bare
