"""Observing what exists: contexts, the buildx builder, its BuildKit containers.

This is the ONLY module that reads Docker state. It returns plain frozen data; nothing in
it keeps a python-on-whales object (those re-inspect Docker on attribute access).

What it reads, cheapest first:
- Docker context meta files and buildx's instance file, straight from disk (no CLI call);
- the farm's own record (`<docker config>/buildkit-farm/<builder>.json`): which settings
  each BuildKit container was created with, and what it reported when last verified;
- one `docker container inspect` per engine for the nodes' BuildKit containers;
- only when the record does not cover a running container (or `live=True`): two
  read-only `docker exec` into it for the BuildKit version and the detected platforms.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from buildkit_farm import docker
from buildkit_farm.docker import DockerPaths, DockerRead
from buildkit_farm.errors import CorruptState
from buildkit_farm.farmfile import limits
from buildkit_farm.farmfile.desired import pools_of
from buildkit_farm.farmfile.drivers import DEFAULT_DRIVER
from buildkit_farm.farmfile.toml import tomllib
from buildkit_farm.reconcile.names import buildx_node_name, container_name

if TYPE_CHECKING:
    from buildkit_farm.farmfile.desired import Desired


OWNER_MARK = "managed by buildkit-farm"


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
    driver_opts: tuple[tuple[str, str], ...]  # sorted
    flags: tuple[str, ...]  # buildkitd flags as stored (buildx adds an entitlement)
    has_config: bool  # a buildkitd.toml is stored


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

    @property
    def verified(self) -> bool:
        return self.status == "running" and self.version is not None


@dataclass(frozen=True)
class RecordEntry:
    """What the farm last knew about one node's BuildKit container."""

    container_id: str
    settings: str
    started_at: str | None = None
    version: str | None = None
    platforms: tuple[str, ...] = ()


@dataclass(frozen=True)
class FarmRecord:
    """The farm's own file for a builder: proof of ownership plus per-node bookkeeping."""

    builder: str
    nodes: Mapping[str, RecordEntry] = field(default_factory=lambda: MappingProxyType({}))
    contexts: tuple[str, ...] = ()  # the contexts the farm created for this builder

    def to_json(self) -> str:
        return json.dumps(
            {
                "builder": self.builder,
                "owner": OWNER_MARK,
                "contexts": sorted(self.contexts),
                "nodes": {
                    k: {
                        "container_id": v.container_id,
                        "settings": v.settings,
                        "started_at": v.started_at,
                        "version": v.version,
                        "platforms": list(v.platforms),
                    }
                    for k, v in sorted(self.nodes.items())
                },
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> FarmRecord:
        data = json.loads(text)
        nodes = {
            k: RecordEntry(
                container_id=v["container_id"],
                settings=v["settings"],
                started_at=v.get("started_at"),
                version=v.get("version"),
                platforms=tuple(v.get("platforms") or ()),
            )
            for k, v in (data.get("nodes") or {}).items()
        }
        return cls(builder=data["builder"], nodes=MappingProxyType(nodes), contexts=tuple(data.get("contexts") or ()))


@dataclass(frozen=True)
class FarmState:
    """Everything observed for one farm file, as plain data."""

    paths: DockerPaths
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
            detail=_why_corrupt(err),
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


def _format_platform(p: Mapping) -> str:
    parts = [p.get("os") or "linux", p.get("architecture") or ""]
    if p.get("variant"):
        parts.append(p["variant"])
    return "/".join(parts)


def parse_instance(text: str) -> ObservedBuilder:
    """buildx's instance file (JSON: Name, Driver, Nodes[Name, Endpoint, Platforms, ...])."""
    data = json.loads(text)
    nodes = []
    for n in data.get("Nodes") or ():
        nodes.append(
            ObservedNode(
                name=n["Name"],
                endpoint=n.get("Endpoint") or "",
                platforms=tuple(_format_platform(p) for p in n.get("Platforms") or ()),
                driver_opts=tuple(sorted((n.get("DriverOpts") or {}).items())),
                flags=tuple(n.get("Flags") or ()),
                has_config="buildkitd.toml" in (n.get("Files") or {}),
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
            detail=_why_corrupt(err),
            hint=f"{restore}delete it (buildx then forgets the builder) and run `farm up`",
        ) from None


def read_record(paths: DockerPaths, builder: str) -> FarmRecord | None:
    file = paths.record_file(builder)
    try:
        return FarmRecord.from_json(file.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorruptState(
            file=str(file),
            what=f'the farm\'s record of builder "{builder}"',
            detail=_why_corrupt(err),
            hint=f"delete it, then `docker buildx rm {builder.lower()}` (without its record the builder is no "
            "longer known as the farm's) and `farm up`",
        ) from None


def _why_corrupt(err: Exception) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f"not JSON: {err.msg} at line {err.lineno}"
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(err, KeyError):
        return f"no {err.args[0]!s} field"
    return "not the JSON that was written there"


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
class Prefetch:
    """Container inspects started ahead of `observe`, each used once for the very same read.

    Each may be an ssh hop (0.3-0.5 s on the lab) and loading the pydantic model takes as
    long, so a converged `farm up` overlaps them: `for_file` guesses the reads from the
    file's raw TOML before the model is loaded (so that guess reads the TOML once more, on
    purpose); `observe` uses a result only for exactly the same command, so a wrong guess
    costs nothing but a wasted read, which `discard` reaps. Start it with the lock held.
    """

    def __init__(self, paths: DockerPaths) -> None:
        self.paths = paths
        self._started: dict[tuple[str | None, ...], docker.PendingRead] = {}

    @classmethod
    def for_file(cls, paths: DockerPaths, farm_file: str | Path) -> Prefetch:
        prefetch = cls(paths)
        try:
            text = limits.read_bounded(farm_file).decode("utf-8")  # never a FIFO, /dev/zero or a huge file
            if limits.check_text(text) is not None:
                return prefetch
            data = tomllib.loads(text)
            builder = data["builder"]
            if builder.get("driver", DEFAULT_DRIVER) != "docker-container":
                return prefetch
            groups: dict[str, list[str]] = {}
            for node in data.get("node", []):
                where = node.get("context") or node["name"]
                groups.setdefault(where, []).append(buildx_node_name(builder["name"], node["name"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, limits.TooBig):
            return prefetch  # load_config, next, says what is wrong
        for where, nodes in groups.items():
            prefetch.start(where, _inspect_args(nodes))
        return prefetch

    def start(self, where: str | None, args: list[str]) -> None:
        self._started[tuple([where, *args])] = docker.start_read(self.paths, where, args)

    def take(self, where: str | None, args: list[str]) -> DockerRead | None:
        started = self._started.pop(tuple([where, *args]), None)
        return docker.finish_read(started) if started is not None else None

    def discard(self) -> None:
        """Reap the reads nobody took (a wrong guess)."""
        while self._started:
            _, pending = self._started.popitem()
            pending.cancel()


def docker_read(paths: DockerPaths, where: str | None, args: list[str], prefetch: Prefetch | None = None) -> DockerRead:
    """One read-only docker CLI call, straight through subprocess (or taken from `prefetch`).

    The reads on the path of a converged `farm up` skip python-on-whales: importing it
    alone costs about 0.3 s of the 1 s budget, and its objects would re-inspect anyway.
    """
    started = prefetch.take(where, args) if prefetch is not None else None
    return started if started is not None else docker.read(paths, where, args)


def _inspect_args(buildx_nodes: Iterable[str]) -> list[str]:
    return ["container", "inspect", "--format", "{{json .}}", *map(container_name, buildx_nodes)]


_MISSING = re.compile(r"no such (container|object)", re.IGNORECASE)


def inspect_buildkits(
    paths: DockerPaths, context: str, nodes: tuple[str, ...], prefetch: Prefetch | None = None
) -> dict[str, ObservedBuildkit]:
    """One `docker container inspect` on one engine for these nodes' BuildKit containers."""
    got = docker_read(paths, context, _inspect_args(nodes), prefetch)
    if got.returncode != 0 and not got.stdout.strip() and not _MISSING.search(got.stderr):
        return {n: ObservedBuildkit(node=n, context=context, status="unreachable", error=got.message) for n in nodes}
    found: dict[str, dict] = {}
    for line in got.stdout.splitlines():
        line = line.strip()
        if line:
            data = json.loads(line)
            found[data["Name"].lstrip("/")] = data
    result = {}
    for n in nodes:
        data = found.get(container_name(n))
        if data is None:
            result[n] = ObservedBuildkit(node=n, context=context, status="missing")
            continue
        st = data.get("State") or {}
        result[n] = ObservedBuildkit(
            node=n,
            context=context,
            status="running" if st.get("Running") else "stopped",
            container_id=data.get("Id"),
            started_at=st.get("StartedAt"),
            cmd=tuple((data.get("Config") or {}).get("Cmd") or ()),
            image=(data.get("Config") or {}).get("Image"),
            network=(data.get("HostConfig") or {}).get("NetworkMode"),
        )
    return result


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


def parse_buildx_inspect(text: str) -> dict[str, dict]:
    """`docker buildx inspect` text → per node: status, version, error and detected platforms.

    buildx lists the platforms pinned to a node first, marked `*`, then what BuildKit
    detected less those; each pinned one goes back before the first of its architecture.
    """
    nodes: dict[str, dict] = {}
    current: dict | None = None
    in_nodes = False  # the builder's own Name: and Driver: come before "Nodes:"
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep or line.startswith((" ", "\t")):
            continue  # labels and GC policy lines are indented
        key, value = key.strip().lower(), value.strip()
        if key == "nodes":
            in_nodes = True
        elif key == "name" and in_nodes:
            current = nodes.setdefault(value, {"platforms": ()})
        elif current is None:
            continue
        elif key == "status":
            current["status"] = value
        elif key in ("buildkit version", "buildkit"):
            current["version"] = value or None
        elif key == "error":
            current["error"] = value
        elif key == "platforms":
            listed = [p.strip() for p in value.split(",") if p.strip()]
            detected = [p for p in listed if not p.endswith("*")]
            for pin in (p.rstrip("*") for p in listed if p.endswith("*")):
                # back beside its own architecture, so the native one still comes first
                same = [i for i, p in enumerate(detected) if p.split("/")[:2] == pin.split("/")[:2]]
                detected.insert(same[0] if same else len(detected), pin)
            current["platforms"] = tuple(detected)
    return nodes


def parse_buildkitd_version(text: str) -> str | None:
    """`buildkitd github.com/moby/buildkit v0.13.2 <rev>` → `v0.13.2`."""
    fields = text.split()
    return fields[2] if len(fields) >= 3 else (fields[-1] if fields else None)


def parse_workers(text: str) -> tuple[str, ...]:
    """`buildctl debug workers --format '{{json .}}'` → detected platforms, in order, deduplicated."""
    text = text.strip()
    if not text:
        return ()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    workers = data if isinstance(data, list) else [data]
    out: list[str] = []
    for w in workers:
        for p in w.get("Platforms") or w.get("platforms") or ():
            s = _format_platform({k.lower(): v for k, v in p.items()})
            if s not in out:
                out.append(s)
    return tuple(out)


# ---------------------------------------------------------------------------- observe
def observe(
    desired: Desired, *, docker_config: str | Path | None = None, live: bool = False, prefetch: Prefetch | None = None
) -> FarmState:
    """Observe everything the farm file talks about. `live` re-probes every running BuildKit;
    `prefetch` holds container inspects already started for this observation."""
    paths = DockerPaths.resolve(docker_config)
    builder_name = desired.builder.name
    settings = desired.nodes
    builder = read_builder(paths, builder_name)
    record = read_record(paths, builder_name)
    contexts = {}
    names = [s.context for s in settings if s.context and s.driver != "remote"]
    for name in names + list(record.contexts if record else ()):
        ctx = read_context(paths, name)
        if ctx is not None:
            contexts[name] = ctx

    # Which BuildKit containers to look at, grouped by the context (engine) they live on.
    where: dict[str, list[str]] = {}
    pooled = {n for nodes in pools_of(settings).values() if len(nodes) > 1 for n in nodes}
    for s in settings:
        if s.driver != "docker-container":
            continue  # remote/kubernetes BuildKits are not containers on a Docker engine
        if s.context in contexts or not s.owns_context:
            where.setdefault(s.context, []).append(buildx_node_name(builder_name, s.name))
        elif s.endpoint and s.tls is None and s.name in pooled:
            # A pool node whose context the farm has not made yet: is its engine there? (A
            # down one must not join: buildx would roll the whole append back.)
            where.setdefault(s.endpoint, []).append(buildx_node_name(builder_name, s.name))
    if builder is not None:
        wanted = {buildx_node_name(builder_name, s.name) for s in settings}
        for n in builder.nodes:
            if n.name not in wanted:
                where.setdefault(n.endpoint, []).append(n.name)

    buildkits: dict[str, ObservedBuildkit] = {}
    if where:
        with ThreadPoolExecutor(max_workers=len(where)) as pool:
            for part in pool.map(lambda kv: inspect_buildkits(paths, kv[0], tuple(kv[1]), prefetch), where.items()):
                buildkits.update(part)
    remote = {buildx_node_name(builder_name, s.name): s.endpoint or s.context for s in settings if s.driver == "remote"}
    if remote and builder is not None:
        buildkits.update(inspect_remote_buildkits(paths, builder_name, remote))

    # Fill in settings/version/platforms from the record where it covers the very container.
    to_probe = []
    for name, bk in list(buildkits.items()):
        entry = record.nodes.get(name) if record else None
        if entry and bk.container_id and entry.container_id == bk.container_id:
            bk = replace(bk, settings=entry.settings)
            if entry.started_at == bk.started_at and entry.version and not live:
                bk = replace(bk, version=entry.version, platforms=entry.platforms)
            buildkits[name] = bk
        if bk.status == "running" and bk.version is None:
            to_probe.append(bk)
    if prefetch is not None:
        prefetch.discard()  # a prefetched read is only as fresh as this observation
    if to_probe:
        with ThreadPoolExecutor(max_workers=len(to_probe)) as pool:
            for bk in pool.map(lambda b: probe_buildkit(paths, b), to_probe):
                buildkits[bk.node] = bk

    tls_digests = {}
    for s in settings:
        for _, f in s.tls.files() if s.tls else ():
            if f.is_file():
                tls_digests[str(f)] = hashlib.sha256(Path(f).read_bytes()).hexdigest()

    return FarmState(
        tls_digests=MappingProxyType(tls_digests),
        paths=paths,
        contexts=MappingProxyType(contexts),
        builder=builder,
        record=record,
        buildkits=MappingProxyType(buildkits),
        context_users=MappingProxyType(context_users(paths, builder_name)),
    )
