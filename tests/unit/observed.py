"""Observed states for plan tests: what buildx, the engines and the farm's record would show."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from buildkit_farm.docker import DockerPaths
from buildkit_farm.farmfile.desired import NodeSettings
from buildkit_farm.reconcile.drift import buildx_flags, expected_cmd
from buildkit_farm.reconcile.observe import (
    OWNER_MARK,
    FarmRecord,
    FarmState,
    ObservedBuilder,
    ObservedBuildkit,
    ObservedContext,
    ObservedNode,
)
from buildkit_farm.reconcile.record import RecordEntry
from buildkit_farm.reconcile.stamp import Stamp


def stamp_of(s: NodeSettings, applied: str = "2026-12-01T00:00:00Z", **over) -> Stamp | None:
    """The stamp a converged farm left on the node's container (and in buildx's node)."""
    if s.driver != "docker-container":
        return None
    return Stamp(settings=s.fingerprint, node=f"ch16/{s.name}", version="0.1.0", applied=applied, **over)


def owned_ctx(name: str, host: str) -> ObservedContext:
    return ObservedContext(name=name, host=host, description=OWNER_MARK, tls=(), skip_tls_verify=False)


def stored(s: NodeSettings, **over) -> ObservedNode:
    """The node as buildx would have stored it from these settings."""
    n = ObservedNode(
        name=f"ch16-{s.name}",
        endpoint=s.context,
        platforms=s.platforms,
        driver_opts=tuple(sorted(s.driver_opts)),
        flags=buildx_flags(s),
        has_config=bool(s.buildkitd_config),
        stamp=stamp_of(s),
    )
    return replace(n, **over)


def running(s: NodeSettings, cid: str, **over) -> ObservedBuildkit:
    bk = ObservedBuildkit(
        node=f"ch16-{s.name}",
        context=s.context,
        status="running",
        container_id=cid,
        started_at="t0",
        settings=s.fingerprint,
        version="v0.13.2",
        platforms=("linux/amd64", "linux/386", "linux/arm64", "linux/arm/v7"),
        cmd=expected_cmd(s),
        network=dict(s.driver_opts).get("network"),
        stamp=stamp_of(s),
    )
    return replace(bk, **over)


def state(
    contexts=(),
    nodes=(),
    buildkits=(),
    driver="docker-container",
    record=True,
    builder=True,
    users=None,
    record_contexts=(),
) -> FarmState:
    b = ObservedBuilder(name="ch16", driver=driver, nodes=tuple(nodes)) if builder else None
    rec = None
    if record:
        rec = FarmRecord(
            builder="ch16",
            nodes=MappingProxyType(
                {
                    bk.node: RecordEntry(
                        container_id=bk.container_id or "", settings=bk.settings or "", started_at=bk.started_at
                    )
                    for bk in buildkits
                    if bk.settings
                }
            ),
            contexts=tuple(record_contexts),
        )
    return FarmState(
        paths=DockerPaths(Path("/dc"), Path("/dc/buildx"), True),
        contexts=MappingProxyType({c.name: c for c in contexts}),
        builder=b,
        record=rec,
        buildkits=MappingProxyType({bk.node: bk for bk in buildkits}),
        context_users=MappingProxyType(users or {}),
    )


def converged_state(*nodes: NodeSettings, **over) -> FarmState:
    return state(
        contexts=[owned_ctx(s.context, s.endpoint) for s in nodes if s.owns_context],
        nodes=[stored(s) for s in nodes],
        buildkits=[running(s, f"id-{s.name}") for s in nodes],
        **over,
    )
