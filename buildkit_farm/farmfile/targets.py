"""The file's targets as frozen specs: a validated `TargetConfig` in, a plain `TargetSpec` out.

Pure: the rules (`farmfile.rules`) have already checked the table, every file it names
exists; this only fills the defaults (platforms from `dockerfiles`, `<context>/Dockerfile`)
and joins each platform with its pool of nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from buildkit_farm.farmfile.desired import SecretRef, TargetSpec

if TYPE_CHECKING:
    from buildkit_farm.farmfile.model import TargetConfig

DEFAULT_DOCKERFILE = "Dockerfile"


def target_spec(t: TargetConfig, pools: Mapping[str, tuple[str, ...]], *, origin: str | None = None) -> TargetSpec:
    """The plain, frozen value of one checked target."""
    platforms = tuple(dict.fromkeys(tuple(t.platforms) or tuple(t.dockerfiles)))
    dockerfile = None
    if platforms and not t.dockerfiles:
        dockerfile = t.dockerfile if t.dockerfile is not None else t.context / DEFAULT_DOCKERFILE
    return TargetSpec(
        name=t.name,
        context=t.context,
        dockerfile=dockerfile,
        dockerfiles=tuple(t.dockerfiles.items()),
        platforms=platforms,
        pools=tuple((p, tuple(pools.get(p, ()))) for p in platforms),
        tags=tuple(t.tags),
        sources=tuple(t.sources),
        variant_tags=t.variant_tags,
        args=tuple(t.args.items()),
        labels=tuple(t.labels.items()),
        stage=t.target,
        cache_from=tuple(t.cache_from),
        cache_to=tuple(t.cache_to),
        provenance=t.provenance,
        sbom=t.sbom,
        secrets=tuple(SecretRef(s.id, s.env, str(s.src) if s.src else None) for s in t.secrets),
        ssh=tuple(t.ssh),
        allow_emulation=tuple(t.allow_emulation),
        origin=origin,
    )
