"""The one place unit tests fake Docker: at the process door (`buildkit_farm.docker`).

`fake_docker` replaces the door's three ways of starting a docker process (`run`, `read`,
`start_read`) with one recorder. Every call is recorded (`calls`: the args after
`docker [--config …] [--context …]`; `argvs`: the whole command line; `wheres`: the
context or host; `envs`: the environment added), then answered by the first rule whose words all appear in the args, in
order of `on(…)`; a call no rule matches succeeds with no output. A rule may fail (exit
code and stderr, raised as the door's `DockerFailed` by `run`) or act (`effect`, e.g. write
buildx's instance file, or raise KeyboardInterrupt).

The unit suite runs with no Docker at all (`make unit`: tests/without-docker), so a test
that reaches past this fake for a real docker fails instead of talking to an engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildkit_farm import docker
from buildkit_farm.docker import DockerFailed, DockerPaths, DockerRead


@dataclass(frozen=True)
class Rule:
    words: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    effect: Callable[[DockerPaths, list[str]], None] | None


class FakeDocker:
    """The docker CLI as the door sees it: recorded calls, rule-based answers."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.argvs: list[list[str]] = []
        self.wheres: list[str | None] = []
        self.envs: list[dict[str, str]] = []
        self.rules: list[Rule] = []

    def on(
        self,
        *words: str,
        returncode: int = 0,
        stdout: str = "",
        stderr: str = "",
        effect: Callable[[DockerPaths, list[str]], None] | None = None,
    ) -> FakeDocker:
        """Answer every call whose args hold all of `words` (the first matching rule wins)."""
        self.rules.append(Rule(words, returncode, stdout, stderr, effect))
        return self

    def answer(
        self, paths: DockerPaths, where: str | None, args: Sequence[str], env: Mapping[str, str] | None = None
    ) -> DockerRead:
        args = [str(a) for a in args]
        self.calls.append(args)
        self.argvs.append(docker.argv(paths, where) + args)
        self.wheres.append(where)
        self.envs.append(dict(env or {}))
        for rule in self.rules:
            if all(word in args for word in rule.words):
                if rule.effect is not None:
                    rule.effect(paths, args)
                return DockerRead(rule.returncode, rule.stdout, rule.stderr)
        return DockerRead(0, "", "")

    # The door's own signatures, so callers cannot tell the difference.
    def run(
        self,
        paths: DockerPaths,
        args: Sequence[str],
        *,
        where: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = docker.QUICK,
    ) -> str:
        got = self.answer(paths, where, args, env)
        if got.returncode != 0:
            raise DockerFailed(self.argvs[-1], got.returncode, got.stdout, got.stderr)
        return got.stdout

    def read(
        self,
        paths: DockerPaths,
        where: str | None,
        args: Sequence[str],
        *,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = docker.QUICK,
    ) -> DockerRead:
        return self.answer(paths, where, args, env)

    def start_read(
        self, paths: DockerPaths, where: str | None, args: Sequence[str], *, timeout: float = docker.QUICK
    ) -> FakePending:
        return FakePending(self.answer(paths, where, args))


@dataclass
class FakePending:
    """A background read already answered."""

    got: DockerRead

    def finish(self) -> DockerRead:
        return self.got

    def cancel(self) -> None:
        pass


@pytest.fixture
def fake_docker(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    fake = FakeDocker()
    monkeypatch.setattr(docker, "run", fake.run)
    monkeypatch.setattr(docker, "read", fake.read)
    monkeypatch.setattr(docker, "start_read", fake.start_read)
    return fake
