"""Image references (`registry/repo:tag@sha256:...`), checked as Docker's grammar defines them.

Tags in a farm file may carry `{placeholder}`s that are filled at build time; `check_tag`
validates the reference with each placeholder standing for a plain word.

Beyond the grammar, what `docker` itself refuses (distribution/reference's `Parse` and
go-digest's `Validate`): a repository path (the name without its registry) of more than 255
characters, a digest of an algorithm other than sha256/sha384/sha512, of the wrong length or in
upper case, and a name that is an image ID (64 hex digits).
"""

from __future__ import annotations

import re

from buildkit_farm.farmfile.words import quote as _q  # redacts credentials, escapes control characters

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # ASCII: \w would take any letter
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*))"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?",
    re.ASCII,
)
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
NAME_MAX = 255  # the repository path, without its registry, as distribution/reference counts
# go-digest's registered algorithms and the length of their hex digits.
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")


class BadReference(ValueError):
    """An image reference that Docker would refuse; `hint` says how to write it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(f"{message} ({hint})" if hint else message)
        self.message = message
        self.hint = hint


def check_reference(ref: str, *, allow_digest: bool = True) -> None:
    """Raise `BadReference` unless `ref` is a valid image reference."""
    if not ref:
        raise BadReference("an image reference must not be empty", "e.g. registry.example.com/team/app:1.0")
    if ref != ref.strip() or any(ch.isspace() for ch in ref):
        raise BadReference(f"invalid image reference {_q(ref)}: it contains white space")
    match = _REFERENCE.fullmatch(ref)
    if match is None:
        raise BadReference(f"invalid image reference {_q(ref)}", _why(ref))
    if len(match["path"]) > NAME_MAX:
        raise BadReference(
            f"invalid image reference {_q(ref)}: the repository name is {len(match['path'])} characters, "
            f"more than {NAME_MAX}",
            "shorten the path after the registry",
        )
    if _IMAGE_ID.fullmatch(ref):
        raise BadReference(
            f"invalid image reference {_q(ref)}: 64 hex digits name an image ID, not a repository",
            "name the repository, e.g. registry.example.com/team/app",
        )
    if match["digest"] and not allow_digest:
        raise BadReference(f"invalid tag {_q(ref)}: a tag to push cannot carry a digest", "remove the @sha256:... part")
    if match["digest"]:
        _check_digest(ref, match["digest"])


def _check_digest(ref: str, digest: str) -> None:
    """What go-digest refuses after the grammar: an unknown algorithm, a wrong length, upper case."""
    algorithm, _, hex_digits = digest.partition(":")
    want = DIGEST_HEX_LENGTHS.get(algorithm)
    if want is None:
        raise BadReference(
            f"invalid image reference {_q(ref)}: unsupported digest algorithm {_q(algorithm)}",
            "a digest looks like @sha256:<64 hex digits> (sha384 and sha512 also work)",
        )
    if len(hex_digits) != want:
        raise BadReference(
            f"invalid image reference {_q(ref)}: a {algorithm} digest has {want} hex digits, not {len(hex_digits)}",
            "copy the whole digest, e.g. from `docker buildx imagetools inspect`",
        )
    if hex_digits != hex_digits.lower():
        raise BadReference(
            f"invalid image reference {_q(ref)}: a digest's hex digits must be lowercase", "write it in lowercase"
        )


def check_tag(tag: str) -> None:
    """Check a tag to push: a reference without digest, where `{name}` placeholders are allowed."""
    for match in PLACEHOLDER.finditer(tag):
        if not _PLACEHOLDER_NAME.fullmatch(match[1]):
            raise BadReference(
                f"invalid placeholder {_q('{' + match[1] + '}')} in tag {_q(tag)}",
                "a placeholder is a name in braces, like {version}",
            )
    filled = PLACEHOLDER.sub("x0", tag)
    if "{" in filled or "}" in filled:
        raise BadReference(f"unbalanced brace in tag {_q(tag)}", "a placeholder is a name in braces, like {version}")
    try:
        check_reference(filled, allow_digest=False)
    except BadReference as err:
        message = err.message.replace(_q(filled), _q(tag))
        raise BadReference(message, err.hint) from None


def placeholders(tag: str) -> tuple[str, ...]:
    """The placeholder names in a tag, in order: `app:{version}` -> ("version",)."""
    return tuple(match[1] for match in PLACEHOLDER.finditer(tag))


def repository(ref: str) -> str:
    """The repository part of a reference: `reg:5000/app:1@sha256:..` -> `reg:5000/app`."""
    match = _REFERENCE.fullmatch(ref)
    if match is None:
        raise BadReference(f"invalid image reference {_q(ref)}", _why(ref))
    return match["name"]


def _why(ref: str) -> str:
    """A best guess at what is wrong with a reference that does not match the grammar."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    repo_part = name[: len(name) - len(last)] + last.split(":", 1)[0]
    path = (
        repo_part.split("/", 1)[-1]
        if "/" in repo_part and _looks_like_domain(repo_part.split("/", 1)[0])
        else repo_part
    )
    if path != path.lower():
        return "repository names must be lowercase"
    if "://" in ref:
        return "write the registry without a scheme, e.g. registry.example.com/team/app"
    if ref.startswith("[") and not re.match(rf"{_DOMAIN}/", ref, re.ASCII):
        return "an IPv6 registry is [address]:port/repository, without a zone (%eth0), e.g. [::1]:5000/app"
    if ":" in last and not re.fullmatch(_TAG, last.split(":", 1)[1], re.ASCII):
        return "a tag has at most 128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'"
    if "@" in ref:
        return "a digest looks like @sha256:<64 hex digits>"
    return "expected [registry/]repository[:tag], lowercase, e.g. registry.example.com/team/app:1.0"


def _looks_like_domain(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost" or part != part.lower()


def split_tag(ref: str) -> tuple[str, str]:
    """`host:5000/app:1.0` -> (`host:5000/app`, `1.0`); the tag defaults to `latest`."""
    repo = repository(ref)
    rest = ref[len(repo) :].split("@", 1)[0]
    return repo, rest[1:] if rest.startswith(":") else "latest"


def registry_host(ref: str) -> str:
    """The registry a reference lives in: `127.0.0.1:5000/app:1` -> `127.0.0.1:5000`; Docker Hub is `docker.io`."""
    name = ref.split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and _looks_like_domain(first):
        return "docker.io" if first == "index.docker.io" else first  # docker's legacy name for the Hub
    return "docker.io"


def split_host(host: str) -> tuple[str, int | None]:
    """`127.0.0.1:5000` -> (`127.0.0.1`, 5000); `[::1]:5000` -> (`::1`, 5000); no port -> None."""
    if host.startswith("["):
        name, _, port = host[1:].partition("]")
        return name, int(port[1:]) if port[1:].isdigit() else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, None
