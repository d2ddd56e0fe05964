"""Images in a registry: read their variants (`farm inspect`) and publish one list from many.

Everything goes through `docker buildx imagetools`, which talks to the registry only:
nothing is pulled into an engine, like `docker manifest inspect`. What it returns is copied
out into plain frozen data (`ImageIndex`, `Variant`) before anything else looks at it.

Why not python-on-whales' `imagetools.inspect`: it runs `--raw` and parses into a model that
drops `os.version`, the descriptors' annotations (which mark attestation manifests) and the
digest of the index itself. `--format '{{json .}}'` carries all three, so that one command
runs through python-on-whales' command runner with the same client settings.

TLS registries with a private CA: the buildx client reads the system certificates, so a CA
given with `ca=` (or `$FARM_REGISTRY_CA`) is handed to it through `SSL_CERT_DIR`. buildx
speaks plain http to any loopback registry unless a builder's buildkitd config says
`http = false`; for a loopback registry that answers TLS (the lab's 127.0.0.1:5443) and no
builder given, a throw-away builder record carrying that setting is made in a private
`BUILDX_CONFIG` (no container is started: imagetools only reads the record's config).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_farm import docker
from buildkit_farm.docker import last_lines
from buildkit_farm.errors import (
    ImageNotFound,
    PlatformConflict,
    RegistryError,
    UsageError,
)

if TYPE_CHECKING:  # python_on_whales is imported lazily, where Docker is called
    from python_on_whales import DockerClient

CA_ENV = "FARM_REGISTRY_CA"
ATTESTATION_TYPE = "attestation-manifest"
_REFERENCE_TYPE = "vnd.docker.reference.type"
_REFERENCE_DIGEST = "vnd.docker.reference.digest"
_LIST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_PROBE_TIMEOUT = 2.0
_SCRATCH_BUILDER = "farm-registry"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Variant:
    """One manifest of an image: a platform's image, or an attestation manifest."""

    platform: str  # os/arch[/variant]; "unknown/unknown" for attestations
    digest: str
    size: int  # bytes of the manifest, as the registry serves it
    media_type: str
    is_attestation: bool = False
    os_version: str | None = None  # Windows images: the build number they need
    attests: str | None = None  # for an attestation: the digest of the image it describes


@dataclass(frozen=True)
class ImageIndex:
    """What the registry holds under one reference: a list of variants, or one manifest."""

    ref: str
    digest: str  # of the list (or of the single manifest)
    media_type: str
    size: int
    is_list: bool
    variants: tuple[Variant, ...] = field(default_factory=tuple)

    @property
    def images(self) -> tuple[Variant, ...]:
        """The variants that are images (attestation manifests left out)."""
        return tuple(v for v in self.variants if not v.is_attestation)

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms of the images, in the list's order."""
        return tuple(v.platform for v in self.images)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ListEntry:
    """An image that will go into a published list, and the source it came from."""

    platform: str
    os_version: str | None
    digest: str
    source: str


@dataclass(frozen=True)
class Clash:
    """Two sources that both carry a variant of one platform."""

    platform: str
    sources: tuple[str, str]


@dataclass(frozen=True)
class ListPlan:
    """The images a list would join, and the clashes that forbid it."""

    entries: tuple[ListEntry, ...]
    clashes: tuple[Clash, ...]

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(e.platform for e in self.entries)


# --------------------------------------------------------------------------- pure logic


def check_ref(ref: str, *, what: str = "image", allow_digest: bool = True) -> None:
    """Raise a UsageError (exit 2) unless `ref` is a valid image reference."""
    from buildkit_farm.farmfile.reference import BadReference, check_reference

    try:
        check_reference(ref, allow_digest=allow_digest)
    except BadReference as err:
        raise UsageError(f"{what}: {err.message}", hint=err.hint) from None


def registry_host(ref: str) -> str:
    """The registry a reference lives in: `127.0.0.1:5000/app:1` -> `127.0.0.1:5000`."""
    name = ref.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first
    return "docker.io"


def is_loopback(host: str) -> bool:
    """True for a registry on this machine (127.0.0.0/8, ::1, localhost)."""
    name = _split_host(host)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_inspect(ref: str, data: dict[str, Any]) -> ImageIndex:
    """Turn `imagetools inspect --format '{{json .}}'` output into an ImageIndex."""
    manifest = data.get("manifest") or {}
    media_type = manifest.get("mediaType", "")
    digest, size = manifest.get("digest", ""), int(manifest.get("size") or 0)
    if "manifests" in manifest or media_type in _LIST_TYPES:
        variants = tuple(_variant(d) for d in manifest.get("manifests") or ())
        return ImageIndex(ref, digest, media_type, size, True, variants)
    config = data.get("image") or {}
    if "architecture" not in config and len(config) == 1:  # keyed by platform
        config = next(iter(config.values())) or {}
    platform = _platform_text(config)
    variant = Variant(platform, digest, size, media_type, os_version=config.get("os.version") or None)
    return ImageIndex(ref, digest, media_type, size, False, (variant,))


BUILT = "this build"  # the source named for platforms a build is about to produce


def plan_list(indexes: Sequence[ImageIndex], *, building: Sequence[str] = ()) -> ListPlan:
    """Which images a list made of `indexes` would hold, and which platforms clash.

    Two images clash when their platforms are the same (aliases folded, `linux/arm64/v8`
    is `linux/arm64`) and, for Windows, their `os.version`s are equal or one is unset: a
    list may hold a Windows image per build number. The same digest twice is no clash.
    `building`: platforms a build will add (not pushed yet, so no digest); any source
    image of one of them clashes.
    """
    entries: list[ListEntry] = [ListEntry(_canonical(p), None, "", BUILT) for p in dict.fromkeys(building)]
    clashes: list[Clash] = []
    for index in indexes:
        for variant in index.images:
            entry = ListEntry(_canonical(variant.platform), variant.os_version, variant.digest, index.ref)
            twin = next((e for e in entries if _same_slot(e, entry)), None)
            if twin is None:
                entries.append(entry)
            elif twin.digest != entry.digest or twin.source == BUILT:
                clashes.append(Clash(entry.platform, (twin.source, entry.source)))
    return ListPlan(tuple(entries), tuple(clashes))


def check_plan(plan: ListPlan) -> None:
    """Raise PlatformConflict naming every clash of the plan."""
    if not plan.clashes:
        return
    lines = [
        f'platform {c.platform} is built by this target and also in "{c.sources[1]}"'
        if c.sources[0] == BUILT
        else f'platform {c.platform} is in both "{c.sources[0]}" and "{c.sources[1]}"'
        for c in plan.clashes
    ]
    raise PlatformConflict(
        "; ".join(lines),
        hint="a list holds one image per platform: drop one of the sources, or build that platform in one place only",
    )


def classify_failure(ref: str, stderr: str, *, action: str = "read") -> Exception:
    """The FarmError that a failed imagetools call on `ref` means, from its stderr."""
    text = (stderr or "").strip()
    low = text.lower()
    detail = last_lines(text)
    host = registry_host(ref)
    if "invalid reference format" in low:
        return UsageError(f'invalid image reference "{ref}"', hint="expected [registry/]repository[:tag][@sha256:...]")
    if "x509" in low or "certificate signed by unknown authority" in low or "certificate is not valid" in low:
        return RegistryError(
            f"registry {host} presented a certificate that is not trusted: {detail}",
            hint=f"give its CA with --ca FILE or ${CA_ENV}=FILE",
        )
    if "http response to https client" in low:
        return RegistryError(
            f"registry {host} speaks plain http, not https: {detail}",
            hint="for a registry that is not on 127.0.0.1 set `http = true` for it in the builder's buildkitd config",
        )
    if "400 bad request" in low or "http request to an https server" in low:
        return RegistryError(
            f"registry {host} speaks https, but buildx talked plain http to it: {detail}",
            hint=f'the builder\'s buildkitd config needs [registry."{host}"] http = false',
        )
    if any(
        s in low
        for s in ("connection refused", "no such host", "i/o timeout", "connection reset", "network is unreachable")
    ):
        return RegistryError(
            f"registry {host} is not reachable: {detail}", hint="check that the registry runs and the address is right"
        )
    if any(s in low for s in ("unauthorized", "denied", "authentication required")):
        return RegistryError(
            f"registry {host} refused to {action} {ref}: {detail}", hint=f"log in first: docker login {host}"
        )
    if "not found" in low or "manifest unknown" in low or "name unknown" in low:
        return ImageNotFound(
            f'image "{ref}" was not found in registry {host}',
            hint="check the repository and tag; this reads the registry only, never local images",
        )
    return RegistryError(f"imagetools could not {action} {ref}: {detail or 'no output'}")


def create_passes(tags: Sequence[str], indexes: Sequence[ImageIndex]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The source arguments of `imagetools create`: the first pass, then fix-ups per tag.

    buildx copies only os/arch/variant from a single manifest's config into the list, so a
    Windows image would lose its `os.version`. Such a source is given instead as a
    descriptor (`{"digest":…, "platform":{…, "os.version":…}}`), which buildx resolves in
    the one repository of the command. When the refs span several repositories, the list
    is made from the refs first (which copies the blobs into the tag's repository), then
    each tag is re-made from itself plus those descriptors (a later descriptor of the same
    digest overrides the platform).
    """
    from buildkit_farm.farmfile.reference import repository

    pinned = {ix.ref: _descriptor_arg(ix.variants[0]) for ix in indexes if not ix.is_list and ix.variants[0].os_version}
    refs = [ix.ref for ix in indexes]
    if not pinned:
        return refs, []
    if len({repository(r) for r in [*tags, *refs]}) == 1:
        return [pinned.get(r, r) for r in refs], []
    return refs, [(tag, list(pinned.values())) for tag in tags]


def _descriptor_arg(variant: Variant) -> str:
    os_name, arch, *rest = variant.platform.split("/")
    platform = {"os": os_name, "architecture": arch}
    if rest:
        platform["variant"] = rest[0]
    if variant.os_version:
        platform["os.version"] = variant.os_version
    return json.dumps({"digest": variant.digest, "platform": platform}, separators=(",", ":"))


def describe(index: ImageIndex) -> str:
    """A `docker manifest inspect`-like table of an image's variants, for people."""
    kind = "manifest list" if index.is_list else "single image (not a list)"
    lines = [
        f"Name:      {index.ref}",
        f"MediaType: {index.media_type}",
        f"Digest:    {index.digest}",
        f"Kind:      {kind}, {len(index.images)} platform(s)",
        "",
    ]
    rows = [("PLATFORM", "DIGEST", "SIZE", "NOTE")]
    for v in index.variants:
        notes = []
        if v.is_attestation:
            notes.append(f"attestation for {v.attests}" if v.attests else "attestation")
        if v.os_version:
            notes.append(f"os.version {v.os_version}")
        rows.append((v.platform, v.digest, str(v.size), ", ".join(notes)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip())
    return "\n".join(lines)


def _variant(desc: dict[str, Any]) -> Variant:
    annotations = desc.get("annotations") or {}
    platform = desc.get("platform") or {}
    return Variant(
        platform=_platform_text(platform) if platform else "unknown",
        digest=desc.get("digest", ""),
        size=int(desc.get("size") or 0),
        media_type=desc.get("mediaType", ""),
        is_attestation=annotations.get(_REFERENCE_TYPE) == ATTESTATION_TYPE,
        os_version=platform.get("os.version") or None,
        attests=annotations.get(_REFERENCE_DIGEST),
    )


def _platform_text(p: dict[str, Any]) -> str:
    parts = [p.get("os") or "unknown", p.get("architecture") or "unknown"]
    if p.get("variant"):
        parts.append(p["variant"])
    return "/".join(parts)


def _canonical(platform: str) -> str:
    from buildkit_farm.farmfile.platforms import normalise

    try:
        return normalise(platform)
    except ValueError:  # a platform the farm does not know is still compared as written
        return platform.lower()


def _same_slot(a: ListEntry, b: ListEntry) -> bool:
    if a.platform != b.platform:
        return False
    return a.os_version is None or b.os_version is None or a.os_version == b.os_version


def _split_host(host: str) -> tuple[str, int | None]:
    if host.startswith("["):  # [::1]:5000
        name, _, port = host[1:].partition("]")
        return name, int(port[1:]) if port.startswith(":") else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, None


# --------------------------------------------------------------------------- access


def resolve_ca(ca: str | Path | None) -> Path | None:
    """The CA to trust: `ca`, else `$FARM_REGISTRY_CA`; checked to exist (exit 2 if not)."""
    value = ca if ca not in (None, "") else os.environ.get(CA_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        return path
    if not path.is_file():
        raise UsageError(f"CA file {path} does not exist", hint=f"give a PEM file with --ca FILE or ${CA_ENV}")
    try:
        head = path.read_text(errors="replace")
    except OSError as err:
        raise UsageError(f"CA file {path} cannot be read: {err.strerror}") from None
    if "-----BEGIN CERTIFICATE-----" not in head:
        raise UsageError(f"CA file {path} holds no PEM certificate", hint="give the CA certificate (ca.pem), not a key")
    return path


@contextmanager
def cert_env(ca: str | Path | None) -> Iterator[dict[str, str]]:
    """Environment for a docker/buildx client call so that it trusts `ca` as well.

    The buildx client (Go) reads every file of each `SSL_CERT_DIR` directory; the system
    directory stays first so public registries keep working. A CA file is copied into a
    private temporary directory for the call's duration (it is a public certificate).
    """
    path = resolve_ca(ca)
    if path is None:
        yield {}
        return
    base = os.environ.get("SSL_CERT_DIR") or "/etc/ssl/certs"
    if path.is_dir():
        yield {"SSL_CERT_DIR": f"{base}:{path}"}
        return
    with tempfile.TemporaryDirectory(prefix="farm-ca-") as tmp:
        shutil.copyfile(path, Path(tmp) / "farm-registry-ca.pem")
        yield {"SSL_CERT_DIR": f"{base}:{tmp}"}


def speaks_tls(host: str) -> bool:
    """True if the registry at `host` answers a TLS handshake (certificate not checked:
    this only tells https from http; buildx checks the certificate afterwards)."""
    name, port = _split_host(host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no trust store to load: nothing is verified
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((name, port or 443), timeout=_PROBE_TIMEOUT) as sock:
            with context.wrap_socket(sock, server_hostname=name):
                return True
    except (OSError, ssl.SSLError):
        return False


def docker_client(*, docker_config: str | Path | None = None, env: dict[str, str] | None = None) -> DockerClient:
    """A client for registry calls: this Docker config, every call carrying `env` (e.g. SSL_CERT_DIR)."""
    return docker.client(docker.DockerPaths.resolve(docker_config), env=env)


@contextmanager
def _session(
    refs: Sequence[str], *, ca: str | Path | None, docker_config: str | Path | None, builder: str | None
) -> Iterator[tuple[DockerClient, str | None]]:
    """A client (and the builder to name) able to reach every registry of `refs`."""
    with ExitStack() as stack:
        env = dict(stack.enter_context(cert_env(ca)))
        if builder is None:
            tls_hosts = sorted({h for h in map(registry_host, refs) if is_loopback(h) and speaks_tls(h)})
            if tls_hosts:
                env["BUILDX_CONFIG"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="farm-buildx-"))
                builder = _scratch_builder(
                    docker_client(docker_config=docker_config, env=env), tls_hosts, env["BUILDX_CONFIG"]
                )
        yield docker_client(docker_config=docker_config, env=env), builder


def _scratch_builder(client: DockerClient, tls_hosts: Sequence[str], where: str) -> str:
    """Record a builder (never started) whose config tells buildx to use https for `tls_hosts`."""
    from python_on_whales.exceptions import DockerException

    config = Path(where) / "buildkitd.toml"
    config.write_text("".join(f'[registry."{h}"]\n  http = false\n' for h in tls_hosts))
    try:
        client.buildx.create(name=_SCRATCH_BUILDER, driver="docker-container", config=config)
    except DockerException as err:
        raise RegistryError(
            f"could not prepare buildx to speak https to {', '.join(tls_hosts)}: {last_lines(err.stderr or '')}",
            hint="buildx records a builder for this; check that the Docker engine answers",
        ) from None
    return _SCRATCH_BUILDER


# --------------------------------------------------------------------------- registry calls


def inspect_image(
    ref: str,
    *,
    ca: str | Path | None = None,
    docker_config: str | Path | None = None,
    builder: str | None = None,
) -> ImageIndex:
    """The variants of `ref` as its registry holds them, read without pulling anything.

    `ca`: a CA file or directory to trust (default `$FARM_REGISTRY_CA`); `docker_config`:
    the Docker config dir (auth, builders); `builder`: the builder whose buildkitd config
    carries the registry settings (http/https). Raises ImageNotFound, RegistryError, or
    UsageError for a malformed reference.
    """
    check_ref(ref)
    with _session([ref], ca=ca, docker_config=docker_config, builder=builder) as (client, name):
        return _inspect(client, ref, name)


def publish_list(
    tags: Sequence[str],
    sources: Sequence[str],
    *,
    ca: str | Path | None = None,
    docker_config: str | Path | None = None,
    builder: str | None = None,
) -> str:
    """Join `sources` into one manifest list pushed under every tag; return its digest.

    `sources` are `repo@sha256:...` digests or `repo:tag` references already in a registry;
    each may itself be a list (its images are all taken). Before anything is pushed, every
    source is read from the registry: missing ones are named together (ImageNotFound) and
    two images of one platform are refused (PlatformConflict). After the push, every tag is
    read back: it must show the same digest and every planned image (digest, platform,
    os.version).
    """
    if not tags:
        raise UsageError("publishing a list needs at least one tag")
    if not sources:
        raise UsageError("publishing a list needs at least one source image")
    for tag in tags:
        check_ref(tag, what="tag", allow_digest=False)
    for source in sources:
        check_ref(source, what="source")
    from python_on_whales.exceptions import DockerException

    with _session([*tags, *sources], ca=ca, docker_config=docker_config, builder=builder) as (client, name):
        indexes = _inspect_sources(client, sources, name)
        plan = plan_list(indexes)
        check_plan(plan)
        first, fixups = create_passes(tags, indexes)
        try:
            client.buildx.imagetools.create(sources=first, tags=list(tags), builder=name)
            for tag, extra in fixups:
                client.buildx.imagetools.create(sources=[tag, *extra], tags=[tag], builder=name)
        except DockerException as err:
            raise classify_failure(tags[0], err.stderr or "", action="push the list to") from None
        return _verify_published(client, tags, plan, name)


def check_sources(
    sources: Sequence[str],
    *,
    building: Sequence[str] = (),
    ca: str | Path | None = None,
    docker_config: str | Path | None = None,
    builder: str | None = None,
) -> ListPlan:
    """Read every source from its registry before anything is built or pushed.

    Raises ImageNotFound naming all missing sources at once, and PlatformConflict when two
    sources, or a source and a platform in `building`, carry the same platform. Returns the
    plan (the sources' images, after the `building` platforms).
    """
    for source in sources:
        check_ref(source, what="source")
    with _session(list(sources), ca=ca, docker_config=docker_config, builder=builder) as (client, name):
        plan = plan_list(_inspect_sources(client, sources, name), building=building)
    check_plan(plan)
    return plan


def _inspect_sources(client: DockerClient, sources: Sequence[str], builder: str | None) -> list[ImageIndex]:
    indexes, missing = [], []
    for source in dict.fromkeys(sources):
        try:
            indexes.append(_inspect(client, source, builder))
        except ImageNotFound:
            missing.append(source)
    if missing:
        raise ImageNotFound(
            "source image(s) not found: " + ", ".join(f'"{m}"' for m in missing),
            hint="push each variant first: the images must be in the registry before the list is made",
        )
    return indexes


def _inspect(client: DockerClient, ref: str, builder: str | None) -> ImageIndex:
    from python_on_whales.exceptions import DockerException
    from python_on_whales.utils import run

    cmd = client.client_config.docker_cmd + ["buildx", "imagetools", "inspect"]
    if builder:
        cmd += ["--builder", builder]
    cmd += ["--format", "{{json .}}", ref]
    try:
        out = run(cmd)
    except DockerException as err:
        raise classify_failure(ref, err.stderr or "") from None
    try:
        return parse_inspect(ref, json.loads(out))
    except (ValueError, TypeError, AttributeError) as err:
        raise RegistryError(f"could not read the imagetools answer for {ref}: {err}") from None


def _verify_published(client: DockerClient, tags: Sequence[str], plan: ListPlan, builder: str | None) -> str:
    """Read every tag back: each must hold every planned image (digest, platform, os.version)
    and all must show one digest."""
    digests = {}
    for tag in tags:
        index = _inspect(client, tag, builder)
        held = {(v.digest, _canonical(v.platform), v.os_version) for v in index.images}
        missing = [e for e in plan.entries if (e.digest, e.platform, e.os_version) not in held]
        if missing:
            what = ", ".join(f"{e.platform} from {e.source}" for e in missing)
            raise RegistryError(
                f"the list pushed to {tag} lacks {what}", hint="rerun; if it persists, inspect the sources"
            )
        digests[tag] = index.digest
    if len(set(digests.values())) != 1:
        shown = ", ".join(f"{t} -> {d}" for t, d in digests.items())
        raise RegistryError(
            f"the tags point at different lists after the push: {shown}", hint="another push raced this one; rerun"
        )
    return next(iter(digests.values()))
