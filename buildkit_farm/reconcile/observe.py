"""Observing what exists: contexts, the buildx builder, its BuildKit containers.

This is the ONLY module that reads Docker state. It returns plain frozen data; nothing in
it keeps a python-on-whales object (those re-inspect Docker on attribute access).

What it reads, cheapest first:
- Docker context meta files and buildx's instance file, straight from disk (no CLI call);
- the farm's own record (`<docker config>/buildkit-farm/<builder>.json`): which settings
  each BuildKit container was created with, and what it reported when last verified;
- one `docker container inspect` per engine for the nodes' BuildKit containers (through a
  node's endpoint while this runner has no context for it; a `tcp://` one with the file's TLS files);
- only when the record does not cover a running container (or `live=True`): two
  read-only `docker exec` into it for the BuildKit version and the detected platforms.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from buildkit_farm.docker_paths import DockerPaths, HostTLS
from buildkit_farm.errors import CorruptState
from buildkit_farm.farmfile.desired import pools_of
from buildkit_farm.reconcile import stamp
from buildkit_farm.reconcile.names import buildx_node_name, container_name, marker_name
from buildkit_farm.reconcile.prefetch import MISSING, Prefetch, docker_read, inspect_args
from buildkit_farm.reconcile.readouts import (
    format_platform,
    parse_buildkitd_version,
    parse_buildx_inspect,
    parse_workers,
)
from buildkit_farm.reconcile.record import OWNER_MARK, FarmRecord, read_record, why_corrupt
from buildkit_farm.reconcile.stamp import Stamp

if TYPE_CHECKING:
    from buildkit_farm.farmfile.desired import Desired


# ---------------------------------------------------------------------------- data
@dataclass(frozen=True)
class ObservedContext:
    """A Docker context, from its meta file. TLS files are known by digest only."""

    name: str
    host: str | None
    description: str
    tls: tuple[tuple[str, str], ...]  # (ca|cert|key, sha256 of the file), sorted
    skip_tls_verify: bool

    @property
    def owned(self) -> bool:
        return self.description.startswith(OWNER_MARK)


@dataclass(frozen=True)
class ObservedNode:
    """One node of the buildx builder, as buildx stored it in its instance file."""

    name: str  # buildx node name (lowercase)
    endpoint: str  # a context name, or a docker host
    platforms: tuple[str, ...]  # pinned, as stored
    driver_opts: tuple[tuple[str, str], ...]  # sorted, less the farm's stamp
    flags: tuple[str, ...]  # buildkitd flags as stored (buildx adds an entitlement)
    has_config: bool  # a buildkitd.toml is stored
    stamp: Stamp | None = None  # what the farm stored for the container's environment


@dataclass(frozen=True)
class ObservedBuilder:
    name: str
    driver: str
    nodes: tuple[ObservedNode, ...]

    def node(self, name: str) -> ObservedNode | None:
        return next((n for n in self.nodes if n.name == name), None)


@dataclass(frozen=True)
class ObservedBuildkit:
    """A node's BuildKit container (`buildx_buildkit_<node>`) on its engine."""

    node: str  # buildx node name
    context: str  # the context (or host) it was looked up through
    status: str  # running | stopped | missing | unreachable
    container_id: str | None = None
    started_at: str | None = None
    error: str | None = None  # docker's own message when unreachable
    settings: str | None = None  # fingerprint recorded for THIS container id, if any
    version: str | None = None  # BuildKit version (None: not verified)
    platforms: tuple[str, ...] = ()  # detected by BuildKit, native first
    cmd: tuple[str, ...] = ()  # the container's buildkitd arguments, as it runs
    image: str | None = None
    network: str | None = None  # HostConfig.NetworkMode
    stamp: Stamp | None = None  # what the farm wrote on the container (None: not the farm's, or unseen)
    image_id: str | None = None  # the image the container runs, by id (markers are made of it)
    drained: str | None = None  # "by WHO at WHEN": the node takes no new builds

    @property
    def verified(self) -> bool:
        return self.status == "running" and self.version is not None


@dataclass(frozen=True)
class FarmState:
    """Everything observed for one farm file, as plain data."""

    paths: DockerPaths  # with the file's TLS engines (`host_tls`): use these to reach a node by endpoint
    contexts: Mapping[str, ObservedContext]  # the contexts the file's nodes name, and the record's
    builder: ObservedBuilder | None
    record: FarmRecord | None  # None: the farm has never claimed this builder
    buildkits: Mapping[str, ObservedBuildkit]  # by buildx node name
    context_users: Mapping[str, tuple[str, ...]]  # context -> other builders using it
    tls_digests: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # file -> sha256


# ---------------------------------------------------------------------------- files
def read_context(paths: DockerPaths, name: str) -> ObservedContext | None:
    """A context from its meta file; None when it does not exist."""
    if name == "default":  # the Docker CLI's built-in context has no meta file
        host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return ObservedContext(name="default", host=host, description="", tls=(), skip_tls_verify=False)
    meta_file = paths.context_meta(name)
    try:
        meta = json.loads(meta_file.read_text())
        docker = (meta.get("Endpoints") or {}).get("docker") or {}
        docker_host, description = docker.get("Host"), (meta.get("Metadata") or {}).get("Description") or ""
    except FileNotFoundError:
        return None
    except (ValueError, AttributeError) as err:  # not JSON, or not the shape Docker writes
        raise CorruptState(
            file=str(meta_file),
            what=f'the meta file of Docker context "{name}"',
            detail=why_corrupt(err),
            hint=f"`docker context rm -f {name}` (or delete {meta_file.parent}); a farm-owned context "
            "is created again by `farm up`",
        ) from None
    tls = []
    tls_dir = paths.context_tls(name)
    for kind in ("ca", "cert", "key"):
        f = tls_dir / f"{kind}.pem"
        if f.is_file():
            tls.append((kind, hashlib.sha256(f.read_bytes()).hexdigest()))
    return ObservedContext(
        name=meta.get("Name", name),
        host=docker_host,
        description=description,
        tls=tuple(tls),
        skip_tls_verify=bool(docker.get("SkipTLSVerify")),
    )


def parse_instance(text: str) -> ObservedBuilder:
    """buildx's instance file (JSON: Name, Driver, Nodes[Name, Endpoint, Platforms, ...])."""
    data = json.loads(text)
    nodes = []
    for n in data.get("Nodes") or ():
        nodes.append(
            ObservedNode(
                name=n["Name"],
                endpoint=n.get("Endpoint") or "",
                platforms=tuple(format_platform(p) for p in n.get("Platforms") or ()),
                driver_opts=stamp.without_stamp(sorted((n.get("DriverOpts") or {}).items())),
                flags=tuple(n.get("Flags") or ()),
                has_config="buildkitd.toml" in (n.get("Files") or {}),
                stamp=stamp.from_driver_opts((n.get("DriverOpts") or {}).items()),
            )
        )
    return ObservedBuilder(name=data["Name"], driver=data.get("Driver") or "", nodes=tuple(nodes))


def read_builder(paths: DockerPaths, name: str) -> ObservedBuilder | None:
    file = paths.instance_file(name)
    try:
        return parse_instance(file.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        backup = paths.farm_dir / f"{name.lower()}.instance.bak"  # apply.py keeps it before each apply
        restore = f"restore it from {backup} (the builder before the last `farm up`), or " if backup.is_file() else ""
        raise CorruptState(
            file=str(file),
            what=f'buildx\'s instance file of builder "{name}"',
            detail=why_corrupt(err),
            hint=f"{restore}delete it (buildx then forgets the builder) and run `farm up`",
        ) from None


def context_users(paths: DockerPaths, exclude: str) -> dict[str, tuple[str, ...]]:
    """Which other buildx builders use which endpoint (context name), from their files."""
    users: dict[str, list[str]] = {}
    inst = paths.buildx_config / "instances"
    if not inst.is_dir():
        return {}
    for f in sorted(inst.iterdir()):
        if f.name == exclude.lower():
            continue
        try:
            b = parse_instance(f.read_text())
        except (OSError, ValueError, KeyError):
            continue
        for n in b.nodes:
            users.setdefault(n.endpoint, []).append(b.name)
    return {k: tuple(v) for k, v in users.items()}


# ---------------------------------------------------------------------------- docker


def inspect_buildkits(
    paths: DockerPaths, context: str, nodes: tuple[str, ...], prefetch: Prefetch | None = None
) -> dict[str, ObservedBuildkit]:
    """One `docker container inspect` on one engine for these nodes' BuildKit containers."""
    got = docker_read(paths, context, inspect_args(nodes), prefetch)
    if got.returncode != 0 and not got.stdout.strip() and not MISSING.search(got.stderr):
        return {n: ObservedBuildkit(node=n, context=context, status="unreachable", error=got.message) for n in nodes}
    found: dict[str, dict] = {}
    for line in got.stdout.splitlines():
        if line.strip():
            data = json.loads(line)
            found[data["Name"].lstrip("/")] = data
    return {n: buildkit_from_inspect(n, context, found) for n in nodes}


def buildkit_from_inspect(node: str, context: str, found: Mapping[str, dict]) -> ObservedBuildkit:
    """One node's BuildKit container (and drain marker) from `docker container inspect` data, by name."""
    marker = found.get(marker_name("drain", node))
    drained = drain_text((marker.get("Config") or {}).get("Labels") or {}) if marker else None
    data = found.get(container_name(node))
    if data is None:
        return ObservedBuildkit(node=node, context=context, status="missing", drained=drained)
    st, config = data.get("State") or {}, data.get("Config") or {}
    return ObservedBuildkit(
        node=node,
        context=context,
        status="running" if st.get("Running") else "stopped",
        container_id=data.get("Id"),
        started_at=st.get("StartedAt"),
        cmd=tuple(config.get("Cmd") or ()),
        image=config.get("Image"),
        network=(data.get("HostConfig") or {}).get("NetworkMode"),
        stamp=stamp.from_env(config.get("Env") or ()),
        image_id=data.get("Image"),
        drained=drained,
    )


DRAIN_LABEL = "org.buildkit-farm.drain"


def drain_text(labels: Mapping[str, str]) -> str:
    """A drain marker's labels, for people: who drained the node, when, and why."""
    who, when, why = (labels.get(f"{DRAIN_LABEL}.{k}", "") for k in ("by", "at", "reason"))
    return f"by {who or 'someone'} at {when or '(time unknown)'}" + (f": {why}" if why else "")


def probe_buildkit(paths: DockerPaths, bk: ObservedBuildkit) -> ObservedBuildkit:
    """Ask a running BuildKit for its version and detected platforms (two read-only execs)."""
    name = container_name(bk.node)
    workers_cmd = ["buildctl", "debug", "workers", "--format", "{{json .}}"]
    # One round trip when the image has a shell (each one is an ssh hop for a remote node).
    both = docker_read(
        paths, bk.context, ["exec", name, "sh", "-c", "buildkitd --version && " + shlex.join(workers_cmd)]
    )
    if both.returncode == 0 and "\n" in both.stdout.strip():
        first, _, rest = both.stdout.partition("\n")
        return replace(bk, version=parse_buildkitd_version(first), platforms=parse_workers(rest))
    version = docker_read(paths, bk.context, ["exec", name, "buildkitd", "--version"])
    if version.returncode != 0:
        return replace(bk, error=version.message)
    workers = docker_read(paths, bk.context, ["exec", name, *workers_cmd])
    if workers.returncode != 0:
        return replace(bk, error=workers.message)
    return replace(bk, version=parse_buildkitd_version(version.stdout), platforms=parse_workers(workers.stdout))


def inspect_remote_buildkits(paths: DockerPaths, builder: str, nodes: Mapping[str, str]) -> dict[str, ObservedBuildkit]:
    """Ask buildx how the `remote` driver's nodes answer: one `buildx inspect`, no container.

    `nodes` maps buildx node names to their BuildKit addresses. A standalone buildkitd is
    not a container the farm can inspect; buildx connects to each and reports its status,
    version and platforms (an address that does not answer is `inactive`).
    """
    got = docker_read(paths, None, ["buildx", "inspect", builder])
    if got.returncode != 0:
        return {
            n: ObservedBuildkit(node=n, context=addr, status="unreachable", error=got.message)
            for n, addr in nodes.items()
        }
    found = parse_buildx_inspect(got.stdout)
    result = {}
    for n, addr in nodes.items():
        node = found.get(n)
        if node is None:
            result[n] = ObservedBuildkit(node=n, context=addr, status="missing")
        elif node.get("status") == "running":
            result[n] = ObservedBuildkit(
                node=n, context=addr, status="running", version=node.get("version"), platforms=node["platforms"]
            )
        else:
            why = node.get("error") or f"buildx reports it {node.get('status') or 'without a status'}"
            result[n] = ObservedBuildkit(
                node=n, context=addr, status="unreachable", error=f"BuildKit at {addr} does not answer ({why})"
            )
    return result


# ---------------------------------------------------------------------------- observe
def observe(
    desired: Desired, *, docker_config: str | Path | None = None, live: bool = False, prefetch: Prefetch | None = None
) -> FarmState:
    """Observe everything the farm file talks about. `live` re-probes every running BuildKit;
    `prefetch` holds container inspects already started for this observation."""
    paths = DockerPaths.resolve(docker_config).with_host_tls(host_tls(desired))
    builder_name = desired.builder.name
    builder = read_builder(paths, builder_name)
    record = read_record(paths, builder_name)
    contexts = _read_contexts(paths, desired, record)
    buildkits = _inspect_all(paths, desired, builder, contexts, prefetch)
    remote = {
        buildx_node_name(builder_name, s.name): s.endpoint or s.context for s in desired.nodes if s.driver == "remote"
    }
    if remote and builder is not None:
        buildkits.update(inspect_remote_buildkits(paths, builder_name, remote))
    to_probe = _settle(buildkits, record, live=live)
    if prefetch is not None:
        prefetch.discard()  # a prefetched read is only as fresh as this observation
    if to_probe:
        with ThreadPoolExecutor(max_workers=len(to_probe)) as pool:
            for bk in pool.map(lambda b: probe_buildkit(paths, b), to_probe):
                buildkits[bk.node] = bk
    return FarmState(
        tls_digests=MappingProxyType(_tls_digests(desired)),
        paths=paths,
        contexts=MappingProxyType(contexts),
        builder=builder,
        record=record,
        buildkits=MappingProxyType(buildkits),
        context_users=MappingProxyType(context_users(paths, builder_name)),
    )


def host_tls(desired: Desired) -> dict[str, HostTLS]:
    """The file's `tcp://` engines with TLS files, by endpoint: how this runner reads one whose
    context it has not made yet (the contexts it makes hold the very same files)."""
    return {
        s.endpoint: HostTLS(s.tls.ca, s.tls.cert, s.tls.key)
        for s in desired.nodes
        if s.owns_context and s.endpoint and s.tls is not None
    }


def _read_contexts(paths: DockerPaths, desired: Desired, record: FarmRecord | None) -> dict[str, ObservedContext]:
    names = [s.context for s in desired.nodes if s.context and s.driver != "remote"]
    found = {}
    for name in names + list(record.contexts if record else ()):
        ctx = read_context(paths, name)
        if ctx is not None:
            found[name] = ctx
    return found


def _engines(
    desired: Desired, builder: ObservedBuilder | None, contexts: Mapping[str, ObservedContext]
) -> dict[str, list[str]]:
    """Which BuildKit containers to look at, grouped by the context (engine) they live on."""
    bname = desired.builder.name
    where: dict[str, list[str]] = {}
    for s in desired.nodes:
        if s.driver != "docker-container":
            continue  # remote/kubernetes BuildKits are not containers on a Docker engine
        if s.context in contexts or not s.owns_context:
            where.setdefault(s.context, []).append(buildx_node_name(bname, s.name))
        elif s.endpoint:
            # A context this runner has not made yet (a fresh runner): the node may well run
            # the farm's BuildKit already, made by another runner, so it is read through its
            # endpoint (a tcp:// one with the file's TLS files, `host_tls`). (And a down pool
            # node must not join: buildx would roll the whole append back.)
            where.setdefault(s.endpoint, []).append(buildx_node_name(bname, s.name))
    wanted = {buildx_node_name(bname, s.name) for s in desired.nodes}
    for n in builder.nodes if builder is not None else ():
        if n.name not in wanted:
            where.setdefault(n.endpoint, []).append(n.name)
    return where


def _inspect_all(
    paths: DockerPaths,
    desired: Desired,
    builder: ObservedBuilder | None,
    contexts: Mapping[str, ObservedContext],
    prefetch: Prefetch | None,
) -> dict[str, ObservedBuildkit]:
    where = _engines(desired, builder, contexts)
    buildkits: dict[str, ObservedBuildkit] = {}
    if where:
        with ThreadPoolExecutor(max_workers=len(where)) as pool:
            for part in pool.map(lambda kv: inspect_buildkits(paths, kv[0], tuple(kv[1]), prefetch), where.items()):
                buildkits.update(part)
    # A node outside any pool whose context is not made yet, and whose engine does not answer,
    # is simply not seen yet: `farm up` creates its context and says what fails there.
    pooled = {n for nodes in pools_of(desired.nodes).values() if len(nodes) > 1 for n in nodes}
    for s in desired.nodes:
        bn = buildx_node_name(desired.builder.name, s.name)
        bk = buildkits.get(bn)
        unseen = bk is not None and bk.status == "unreachable" and s.context not in contexts
        if unseen and s.owns_context and s.name not in pooled:
            del buildkits[bn]
    return buildkits


def _settle(buildkits: dict[str, ObservedBuildkit], record: FarmRecord | None, *, live: bool) -> list[ObservedBuildkit]:
    """Fill in settings (from the container's stamp; else the record, for the very same
    container) and version/platforms from the record; returns the BuildKits to ask."""
    to_probe = []
    for name, bk in list(buildkits.items()):
        entry = record.nodes.get(name) if record else None
        same = entry is not None and bk.container_id is not None and entry.container_id == bk.container_id
        if bk.stamp is not None:
            bk = replace(bk, settings=bk.stamp.settings)
        elif same and entry is not None:
            bk = replace(bk, settings=entry.settings)  # made before the farm stamped containers
        if same and entry is not None and entry.started_at == bk.started_at and entry.version and not live:
            bk = replace(bk, version=entry.version, platforms=entry.platforms)
        buildkits[name] = bk
        if bk.status == "running" and bk.version is None:
            to_probe.append(bk)
    return to_probe


def _tls_digests(desired: Desired) -> dict[str, str]:
    digests = {}
    for s in desired.nodes:
        for _, f in s.tls.files() if s.tls else ():
            if f.is_file():
                digests[str(f)] = hashlib.sha256(Path(f).read_bytes()).hexdigest()
    return digests
