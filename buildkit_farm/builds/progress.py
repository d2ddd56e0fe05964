"""Progress (pure): buildx's plain progress lines in; per-platform timing and the failing step out."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence

_VERTEX = re.compile(r"^#(\d+) \[(?:(?P<platform>[a-z0-9]+/[a-z0-9]+(?:/[a-z0-9]+)?) )?[^\]]*\]")


_ERROR_VERTEX = re.compile(r"^#(\d+) ERROR: (.*)")


_SUMMARY_STEP = re.compile(r"^ > \[(?:(?P<platform>[a-z0-9]+/[a-z0-9]+(?:/[a-z0-9]+)?) )?[^\]]*\].*:$")


class ProgressTracker:
    """Follows buildx's plain progress: which platform each step is for, when each
    platform's last step moved, and which step failed with its last lines."""

    def __init__(self, platforms: Sequence[str], *, start: float) -> None:
        self.platforms = tuple(platforms)
        self.start = start
        self.vertex_platform: dict[str, str | None] = {}
        self.last_seen: dict[str, float] = {}
        self.tail: deque[str] = deque(maxlen=400)
        self.failed_vertex: str | None = None
        self.error_lines: list[str] = []

    def feed(self, line: str, now: float) -> None:
        line = line.rstrip("\n")
        self.tail.append(line)
        match = _VERTEX.match(line)
        if match:
            platform = match.group("platform")
            if platform is None and len(self.platforms) == 1 and not line.startswith(f"#{match.group(1)} [internal]"):
                platform = self.platforms[0]
            self.vertex_platform.setdefault(match.group(1), platform)
        number = line[1:].split(" ", 1)[0] if line.startswith("#") else None
        platform = self.vertex_platform.get(number) if number else None
        if platform:
            self.last_seen[platform] = now
        error = _ERROR_VERTEX.match(line)
        # A step stopped because another build failed (bake cancels them all) is not a failure.
        if error and self.failed_vertex is None and "context canceled" not in error.group(2):
            self.failed_vertex = error.group(1)
        if line.startswith("ERROR:") or line.startswith("error:"):
            self.error_lines.append(line)

    def durations(self, end: float) -> dict[str, float]:
        """Seconds from start to each platform's last step (the build's end if unknown)."""
        return {p: round(self.last_seen.get(p, end) - self.start, 2) for p in self.platforms}

    def failed_platform(self) -> str | None:
        if self.failed_vertex is not None:
            platform = self.vertex_platform.get(self.failed_vertex)
            if platform:
                return platform
        for line in self.tail:
            match = _SUMMARY_STEP.match(line)
            if match and match.group("platform"):
                return match.group("platform")
        return self.platforms[0] if len(self.platforms) == 1 else None

    def failing_lines(self, limit: int = 12) -> list[str]:
        """The failed step's last log lines (buildx's own summary block when present)."""
        lines = list(self.tail)
        # buildx prints "------\n > [platform n/m] STEP:\n<last lines>\n------" on failure.
        for i, line in enumerate(lines):
            if _SUMMARY_STEP.match(line):
                block: list[str] = []
                for later in lines[i : i + 1 + limit * 2]:
                    if later.startswith("------") and block:
                        break
                    block.append(later)
                return block[: limit + 1] + [l for l in self.error_lines[-1:]]
        if self.failed_vertex is not None:
            mine = [l for l in lines if l.startswith(f"#{self.failed_vertex} ")]
            return mine[-limit:] + self.error_lines[-1:]
        return (self.error_lines or lines)[-limit:]
