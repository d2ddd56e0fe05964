"""The one error hierarchy whose messages reach the user.

Every error carries a message and an optional hint; the CLI prints both and exits with
`exit_code` (2 for bad input or usage, 1 for an operation that failed).
"""

from __future__ import annotations

from dataclasses import dataclass


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


class ConfigError(FarmError, ValueError):
    """The farm file is missing, unreadable or invalid; lists every issue at once."""

    exit_code = 2

    def __init__(self, *, file: str, issues: list[ConfigIssue] | tuple[ConfigIssue, ...]) -> None:
        self.file = file
        self.issues = tuple(issues)
        lines = [issue.render(file) for issue in self.issues]
        super().__init__("\n".join(lines))


class EngineUnreachable(FarmError, ConnectionError):
    """A node's Docker engine does not answer."""

    def __init__(self, *, node: str, endpoint: str, detail: str, hint: str | None = None) -> None:
        self.node, self.endpoint, self.detail = node, endpoint, detail
        super().__init__(
            f'node "{node}" ({endpoint}) is unreachable: {detail}',
            hint=hint
            or unreachable_hint(detail, endpoint)
            or "check that the engine runs and the endpoint is right, then rerun `farm up`",
        )


def unreachable_hint(detail: str, endpoint: str | None) -> str | None:
    """What to check when an engine did not answer, read from the error (ssh, socket, TLS)."""
    low = detail.lower()
    if "ssh" in low:
        where = endpoint or "the endpoint"
        return (
            f"check that sshd answers at {where} and that `ssh` to it works non-interactively (BatchMode); "
            "then rerun `farm up`"
        )
    if "no such file" in low or "cannot connect" in low:
        return "is that Docker engine running, and is the socket path right? then rerun `farm up`"
    if "tls" in low or "certificate" in low or "x509" in low:
        return "check the node's tls.ca/cert/key against the engine's certificates; then rerun `farm up`"
    return None


class PlanBlocked(FarmError):
    """More than one problem stops the plan (foreign resources, unreachable engines): all listed."""

    def __init__(self, problems: list[FarmError]) -> None:
        self.problems = tuple(problems)
        # Bad input (exit 2) only when every problem is one; an engine that does not answer is an operation failure.
        self.exit_code = 2 if all(p.exit_code == 2 for p in problems) else 1
        lines = [f"- {p.message}" + (f" ({p.hint})" if p.hint else "") for p in problems]
        super().__init__(f"{len(problems)} problems stop the plan:\n" + "\n".join(lines))


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


class BuildError(FarmError):
    """A build, push or post-push check failed."""


class RegistryError(FarmError):
    """A registry could not be read or written (unreachable, TLS, refused push)."""


class ImageNotFound(RegistryError, LookupError):
    """An image reference names nothing in its registry."""


class PlatformConflict(FarmError, ValueError):
    """Two images to join into one list carry the same platform; names both."""

    exit_code = 2
