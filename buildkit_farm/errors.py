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
            hint=hint or "check that the engine runs and the endpoint is right, then rerun `farm up`",
        )


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


class BuildError(FarmError):
    """A build, push or post-push check failed."""


class RegistryError(FarmError):
    """A registry could not be read or written (unreachable, TLS, refused push)."""


class ImageNotFound(RegistryError, LookupError):
    """An image reference names nothing in its registry."""


class PlatformConflict(FarmError, ValueError):
    """Two images to join into one list carry the same platform; names both."""

    exit_code = 2
