"""What a registry holds, as plain data, and the pure logic on it: parsing imagetools'
answers, planning one list from many images, naming a failure from its stderr.

Nothing here talks to Docker or a registry: `registry.read` and `registry.publish` do, and
copy what they get into these frozen values (`ImageIndex`, `Variant`) before anything else
looks at it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from buildkit_farm.causes import transient_push
from buildkit_farm.docker import last_lines
from buildkit_farm.errors import ImageNotFound, PlatformConflict, RegistryError, UsageError
from buildkit_farm.farmfile.platforms import normalise
from buildkit_farm.farmfile.reference import BadReference, check_reference, registry_host, repository, split_host

CA_ENV = "FARM_REGISTRY_CA"
ATTESTATION_TYPE = "attestation-manifest"
_REFERENCE_TYPE = "vnd.docker.reference.type"
_REFERENCE_DIGEST = "vnd.docker.reference.digest"
LIST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


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
    try:
        check_reference(ref, allow_digest=allow_digest)
    except BadReference as err:
        raise UsageError(f"{what}: {err.message}", hint=err.hint) from None


def is_loopback(host: str) -> bool:
    """True for a registry on this machine (127.0.0.0/8, ::1, localhost)."""
    name = split_host(host)[0]
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
    if "manifests" in manifest or media_type in LIST_TYPES:
        variants = tuple(_variant(d) for d in manifest.get("manifests") or ())
        return ImageIndex(ref, digest, media_type, size, True, variants)
    config = data.get("image") or {}
    if "architecture" not in config and len(config) == 1:  # keyed by platform
        config = next(iter(config.values())) or {}
    platform = _platform_text(config)
    variant = Variant(platform, digest, size, media_type, os_version=config.get("os.version") or None)
    return ImageIndex(ref, digest, media_type, size, False, (variant,))


def parse_list(ref: str, body: bytes, media_type: str) -> ImageIndex | None:
    """A manifest list (or OCI index) as the registry serves it, read into an ImageIndex;
    None for anything else (a single image needs its config to name its platform)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("manifests"), list):
        return None
    if (data.get("mediaType") or media_type) not in LIST_TYPES:
        return None
    try:
        variants = tuple(_variant(d) for d in data["manifests"])
    except (AttributeError, TypeError, ValueError):  # not the shape of a list: imagetools says what it is
        return None
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return ImageIndex(ref, digest, data.get("mediaType") or media_type, len(body), True, variants)


BUILT = "this build"  # the source named for platforms a build is about to produce


def plan_list(indexes: Sequence[ImageIndex], *, building: Sequence[str] = ()) -> ListPlan:
    """Which images a list made of `indexes` would hold, and which platforms clash.

    Two images clash when their platforms are the same (aliases folded, `linux/arm64/v8`
    is `linux/arm64`) and, for Windows, their `os.version`s are equal or one is unset: a
    list may hold a Windows image per build number. The same digest twice is no clash.
    `building`: platforms a build will add (not pushed yet, so no digest); any source
    image of one of them clashes.
    """
    entries: list[ListEntry] = [ListEntry(canonical_platform(p), None, "", BUILT) for p in dict.fromkeys(building)]
    clashes: list[Clash] = []
    for index in indexes:
        for variant in index.images:
            entry = ListEntry(canonical_platform(variant.platform), variant.os_version, variant.digest, index.ref)
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
    transport = _transport_failure(ref, text, action)
    if transport is not None:
        return transport
    if "error getting credentials" in low or "docker-credential-" in low:
        return RegistryError(
            f"the credential helper of the docker config failed for registry {host}: {detail}",
            hint="check credsStore/credHelpers in that config.json; the docker-credential-* program must be on PATH",
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


def _transport_failure(ref: str, text: str, action: str) -> RegistryError | None:
    """The RegistryError of a failure on the way to the registry (TLS, http/https, a push cut,
    no answer); None when the registry answered about the image itself."""
    low, detail, host = text.lower(), last_lines(text), registry_host(ref)
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
    if action != "read" and transient_push(text):  # before the 400 below: the registry answered
        return RegistryError(
            f"registry {host} failed as farm tried to {action} {ref}, for a reason that usually passes: {detail}",
            hint="run again; if it keeps failing, the registry's log says why",
        )
    # A TLS server answers a plain-http request with a bare 400; a 400 to https:// is not that.
    if "http request to an https server" in low or re.search(r"request to http://\S*: 400 bad request", low):
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
    return None


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


def canonical_platform(platform: str) -> str:
    try:
        return normalise(platform)
    except ValueError:  # a platform the farm does not know is still compared as written
        return platform.lower()


def _same_slot(a: ListEntry, b: ListEntry) -> bool:
    if a.platform != b.platform:
        return False
    return a.os_version is None or b.os_version is None or a.os_version == b.os_version
