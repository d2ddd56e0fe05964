"""The one error hierarchy whose messages reach the user.

Every error carries a message and an optional hint; the CLI prints both and exits with
`exit_code` (2 for bad input or usage, 1 for an operation that failed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from buildkit_farm.causes import engine_hint


class FarmError(Exception):
    """Root of every error buildkit-farm reports to the user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(FarmError, ValueError):
    """The command line asks for something impossible (unknown target, bad --var)."""

    exit_code = 2


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in the farm file, located by its key path."""

    path: str  # e.g. 'node "node2".platforms[0]'; "" for the whole file
    message: str
    hint: str | None = None
    line: int | None = None

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


MAX_SHOWN_ISSUES = 50


class ConfigError(FarmError, ValueError):
    """The farm file is missing, unreadable or invalid; lists every issue at once."""

    exit_code = 2

    def __init__(self, *, file: str, issues: list[ConfigIssue] | tuple[ConfigIssue, ...]) -> None:
        self.file = file
        self.issues = tuple(issues)
        lines = [issue.render(file) for issue in self.issues[:MAX_SHOWN_ISSUES]]
        if len(self.issues) > MAX_SHOWN_ISSUES:  # a generated file can hold thousands; the first ones say enough
            lines.append(f"{file}: ... and {len(self.issues) - MAX_SHOWN_ISSUES} more issues (fix these first)")
        super().__init__("\n".join(lines))


class EngineUnreachable(FarmError, ConnectionError):
    """A node's Docker engine does not answer."""

    def __init__(self, *, node: str, endpoint: str, detail: str, hint: str | None = None) -> None:
        self.node, self.endpoint, self.detail = node, endpoint, detail
        super().__init__(
            f'node "{node}" ({endpoint}) is unreachable: {detail}',
            hint=hint
            or engine_hint(detail, endpoint)
            or "check that the engine runs and the endpoint is right, then rerun `farm up`",
        )


class PlanBlocked(FarmError):
    """More than one problem stops the plan (foreign resources, unreachable engines): all listed."""

    def __init__(self, problems: list[FarmError]) -> None:
        self.problems = tuple(problems)
        # Bad input (exit 2) only when every problem is one; an engine that does not answer is an operation failure.
        self.exit_code = 2 if all(p.exit_code == 2 for p in problems) else 1
        lines = [f"- {p.message}" + (f" ({p.hint})" if p.hint else "") for p in problems]
        super().__init__(f"{len(problems)} problems stop the plan:\n" + "\n".join(lines))


class NoHealthyNode(FarmError):
    """Every node of a platform's pool is down (exit 1): names the platforms and their nodes."""

    def __init__(self, *, pools: tuple[tuple[str, tuple[tuple[str, str], ...]], ...], hint: str | None = None) -> None:
        self.platforms = tuple(platform for platform, _ in pools)
        text = "; ".join(f"{p}: " + ", ".join(f'"{n}" ({why})' for n, why in members) for p, members in pools)
        super().__init__(
            f"no healthy node for {text}",
            hint=hint or "start a node of each of those pools (`farm status` shows them), then rerun",
        )


class ForeignResource(FarmError):
    """A context or builder with the farm's name exists but the farm does not own it."""

    exit_code = 2


class ApplyError(FarmError):
    """A step of the plan failed; names the step."""

    def __init__(self, *, step: str, detail: str, hint: str | None = None) -> None:
        self.step, self.detail = step, detail
        super().__init__(f"{step} failed: {detail}", hint=hint)


class NotConverged(FarmError):
    """After apply, observing again still shows changes to make."""


class LockTimeout(FarmError, TimeoutError):
    """Another `farm` run holds the lock on this Docker config."""


class BuildsRunning(FarmError, TimeoutError):
    """Builds still run on a node that `farm up`/`farm down` must restart or remove; nothing was changed."""


class NodeDrained(FarmError):
    """A platform's only node is drained: no node takes its builds."""


class BuildError(FarmError):
    """A build, push or post-push check failed."""


class RegistryError(FarmError):
    """A registry could not be read or written (unreachable, TLS, refused push)."""


class ImageNotFound(RegistryError, LookupError):
    """An image reference names nothing in its registry."""


class PlatformConflict(FarmError, ValueError):
    """Two images to join into one list carry the same platform; names both."""

    exit_code = 2


class CorruptState(FarmError):
    """A file Docker, buildx or the farm keeps (a context's meta.json, a builder's instance
    file, the farm's record) cannot be read; names the file and how to repair it."""

    exit_code = 2

    def __init__(self, *, file: str, what: str, detail: str, hint: str) -> None:
        self.file = file
        super().__init__(f"{file}: {what} is corrupt ({detail})", hint=hint)


class BuildxUnsupported(FarmError):
    """The Docker config runs no buildx, or one older than farm supports (exit 2: fix the machine, then rerun)."""

    exit_code = 2

    def __init__(self, *, found: str | None, needed: str, tested: str, detail: str = "") -> None:
        self.found, self.needed = found, needed
        if found is None:
            message = (
                f"no buildx answers `docker buildx version`{f' ({detail})' if detail else ''}; farm needs {needed}"
            )
        else:
            message = f"buildx {found} is older than farm supports: it needs buildx {needed}"
        super().__init__(
            message,
            hint=f"install or upgrade the docker-buildx plugin (farm is tested with buildx {tested}); "
            "`docker buildx version` shows the one this Docker config runs",
        )


class Interrupted(FarmError):
    """Ctrl-C (SIGINT) stopped a run that changes Docker; says what was already applied."""

    exit_code = 130


# ---------------------------------------------------------------------------- what a message may show
# Credentials that must never reach a terminal or a log, however they got into a message.
# A scheme is at most 32 characters: unbounded, a search through a long word ("ssh://u@" + 100k
# letters + ":22") would retry the scheme at every letter (quadratic). Glued URLs still match.
# The password may hold an '@' (`user:p@ss@host`): the userinfo runs to the last '@' before
# the host. A password already masked (`user:***@`, as the process door leaves it) is not one.
URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,31}://)[^\s/@\"']*:(?!\*\*\*@)[^\s/\"']*@", re.ASCII)
# user:password@host without a scheme (a tag), but not repo:tag@sha256:<digest>.
_BARE_USERINFO = re.compile(
    r"(?<![^\s\"'(=,])[^\s/@\"':=,]+:(?!\*\*\*@)[^\s/@\"']+@(?![A-Za-z][A-Za-z0-9]*:[0-9a-fA-F]{32,})", re.ASCII
)
CREDENTIAL_TOKENS = re.compile(
    # Distinctive prefixes count anywhere (a token glued to a word is still one); "sk-" only at
    # the start of a word: "disk-usage-reporter-tool" holds no key.
    r"gh[pousr]_[A-Za-z0-9_]{16,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{16,}"
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}|xox[abprs]-[A-Za-z0-9-]{10,}|npm_[A-Za-z0-9]{30,}|(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}"
    # a JSON Web Token (a registry's bearer token is one): header.payload.signature
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    # a private key with its body (raw lines, or \n as a quoted value shows them) and footer
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[A-Za-z0-9+/=\r\n]|\\[nr])*(?:-----END [A-Z0-9 ]*PRIVATE KEY-----)?",
    re.ASCII,
)
# HTTP credentials as registries, proxies and buildx logs print them. The value after an
# Authorization header (its scheme kept), after a lone `Basic`/`Bearer` (a token-like word: not
# "Basic authentication"), a docker config's `"auth": "…"`, a `--password VALUE` flag, and a
# `NAME=value` whose name ends in password, token, secret, key or auth (REGISTRY_PASSWORD=…,
# access_token=…; not authors=…). Each is anchored on its keyword: linear on any text.
_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization|x-registry-auth|x-registry-config)(\"?\s*[:=]\s*\"?)"
    r"(?:(basic|bearer|token|digest|negotiate|ntlm|aws4-hmac-sha256)\s+)?(?!\*\*\*)[^\s\"',;]+"
)
_SCHEME_TOKEN = re.compile(
    r"\b(Basic|Bearer|bearer)\s+(?=[A-Za-z0-9+/._~-]*[A-Z0-9+/=])[A-Za-z0-9+/._~-]{12,}=*(?![A-Za-z0-9+/=._~-])"
)
_JSON_SECRET = re.compile(
    r'(?i)("(?:auth|password|passwd|secret|token|identitytoken|registrytoken|access_token|refresh_token'
    r'|client_secret|api_key|apikey)"\s*:\s*")(?!REDACTED"|\*\*\*")(?:[^"\\\n]|\\.){1,4096}"'
)
_SECRET_FLAG = re.compile(
    r"(?i)(--(?:password|passwd|token|api[-_]?key|access[-_]?token|auth[-_]?token|client[-_]?secret)"
    r"|\blogin\b[^\n]{0,200}?\s-p)(=|\s+)(?![-*]|REDACTED)[^\s\"',;]+"
)
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(password|passwd|passphrase|token|secret|api[_-]?key|access[_-]?key|private[_-]?key|credentials?|auth)"
    r"(\d*=)(?!\*\*\*|REDACTED)[^\s,&;\"'\])}]+"
    r"|(password|passwd|passphrase)(\"?:\s*)(?!\*\*\*)[^\s,&;\"'\])}]+"
)


def redact(text: str) -> str:
    """`tcp://user:pw@host` -> `tcp://***@host`; `Authorization: Basic …`, `Bearer …`, tokens,
    private keys, `--password …`, `REGISTRY_PASSWORD=…` and a docker config's auths -> `***`."""
    if "@" in text:
        text = _BARE_USERINFO.sub("***@", URL_USERINFO.sub(r"\g<scheme>***@", text))
    text = _AUTH_HEADER.sub(_header_masked, text)
    text = _SCHEME_TOKEN.sub(r"\1 ***", text)
    text = _JSON_SECRET.sub(r'\1***"', text)
    text = _SECRET_FLAG.sub(r"\1\2***", text)
    text = _SECRET_ASSIGNMENT.sub(_assignment_masked, text)
    return CREDENTIAL_TOKENS.sub("***", text)


# Options whose next argument is a secret (`docker login -p …`, a tool's `--token …`).
_SECRET_OPTIONS = frozenset({"--password", "--passwd", "--token", "--api-key", "--access-token", "--client-secret"})


def redacted_argv(command: Sequence[object], *, hide: Callable[[str], str] = redact) -> tuple[str, ...]:
    """A command line as farm may keep or show it: each argument through `hide`, and the one
    after a secret option (`--password`, `-p` of `docker login`) replaced whole."""
    words = [str(a) for a in command]
    login = "login" in words
    out: list[str] = []
    for index, word in enumerate(words):
        before = words[index - 1] if index else ""
        secret = before in _SECRET_OPTIONS or (login and before == "-p")
        out.append("***" if secret and word else hide(word))
    return tuple(out)


def _header_masked(match: re.Match[str]) -> str:
    scheme = f"{match.group(3)} " if match.group(3) else ""
    return f"{match.group(1)}{match.group(2)}{scheme}***"


def _assignment_masked(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return f"{match.group(1)}{match.group(2)}***"
    return f"{match.group(3)}{match.group(4)}***"


def printable(text: str, *, keep: str = "") -> str:
    """Escape every character that is not printable (ANSI escapes, C1, bidi overrides) as
    `\\xNN` / `\\uNNNN`, except those in `keep` (e.g. "\\n" between message lines)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch in keep:
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    return "".join(out)


def shown(text: str, *, keep: str = "") -> str:
    """A text as the user may see it: credentials redacted, control characters escaped."""
    return printable(redact(text), keep=keep)


# A key whose value is a secret whatever it looks like: {"DB_PASSWORD": "plainword"} shows
# no secret to `redact`, which reads the key and the value apart.
_SECRET_NAME = re.compile(
    r"(?i)(?:password|passwd|passphrase|token|secret|api[_-]?key|access[_-]?key|private[_-]?key|credentials?|auth)\d*$"
)


def redacted(data: Any) -> Any:
    """JSON-like data with every string (keys too) redacted, and the string value of a key named
    like a credential hidden: what a report or `--json` may hold."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redacted(k) if isinstance(k, str) else k: _value_of(k, v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redacted(v) for v in data]
    return data


def _value_of(key: Any, value: Any) -> Any:
    if isinstance(key, str) and isinstance(value, str) and value and _SECRET_NAME.search(key):
        return value if value in ("REDACTED", "***") else "***"
    return redacted(value)
