"""The one place unit tests fake Docker: at the process door (`buildkit_farm.docker`).

`fake_docker` replaces the door's ways of starting a docker process (`run`, `read`,
`start_read`, and `client`, the python-on-whales client its other verbs use) with one
recorder. The fake client turns each python-on-whales call the door makes into the command
line python-on-whales would run, so both kinds of verb are recorded and answered alike, and
no python-on-whales client ever looks for a docker binary. Every call is recorded (`calls`: the args after
`docker [--config …] [--context …]`; `argvs`: the whole command line; `wheres`: the
context or host; `envs`: the environment added), then answered by the first rule whose words all appear in the args, in
order of `on(…)`; a call no rule matches succeeds with no output. A rule may fail (exit
code and stderr, raised as the door's `DockerFailed` by `run`) or act (`effect`, e.g. write
buildx's instance file, or raise KeyboardInterrupt).

The unit suite runs with no Docker at all (`make unit`: tests/without-docker), so a test
that reaches past this fake for a real docker fails instead of talking to an engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from python_on_whales import DockerContextConfig
from python_on_whales.components.system.models import SystemInfo
from python_on_whales.utils import get_docker_exception_type

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

    def client(
        self,
        paths: DockerPaths,
        where: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> FakeClient:
        return FakeClient(self, paths, where, env)


class FakeClient:
    """python-on-whales' DockerClient, the part the door uses: each call is the command line
    python-on-whales runs for it, answered by the fake's rules, failing as python-on-whales fails."""

    def __init__(self, fake: FakeDocker, paths: DockerPaths, where: str | None, env: Mapping[str, str] | None) -> None:
        self._fake, self._paths, self._where, self._env = fake, paths, where, env
        self.system = SimpleNamespace(info=self._info)
        self.context = SimpleNamespace(create=self._create_context, remove=self._remove_context)
        self.container = SimpleNamespace(remove=self._remove_container, run=self._run_container)
        self.image = SimpleNamespace(pull=self._pull)
        self.buildx = SimpleNamespace(imagetools=SimpleNamespace(create=self._imagetools_create))

    def _answer(self, args: list[str]) -> str:
        got = self._fake.answer(self._paths, self._where, args, self._env)
        if got.returncode != 0:
            kind = get_docker_exception_type(got.stderr.encode())
            raise kind(self._fake.argvs[-1], got.returncode, got.stdout.encode(), got.stderr.encode())
        return got.stdout

    def _stream(self, args: list[str]) -> Iterator[tuple[str, bytes]]:
        got = self._fake.answer(self._paths, self._where, args, self._env)
        for line in got.stdout.splitlines(keepends=True):
            yield "stdout", line.encode()
        if got.returncode != 0:
            kind = get_docker_exception_type(got.stderr.encode())
            raise kind(self._fake.argvs[-1], got.returncode, None, got.stderr.encode())

    def _info(self) -> SystemInfo:
        return SystemInfo(**json.loads(self._answer(["system", "info", "--format", "{{json .}}"])))

    def _create_context(self, name: str, *, description: str, docker: DockerContextConfig) -> None:
        self._answer(
            ["context", "create", "--description", description, "--docker", docker.format_for_docker_cli(), name]
        )

    def _remove_context(self, name: str, force: bool = False) -> None:
        self._answer(["context", "remove", *(["--force"] if force else []), name])

    def _remove_container(self, name: str, force: bool = False) -> None:
        self._answer(["container", "rm", *(["--force"] if force else []), name])

    def _run_container(self, image: str, command: Sequence[str], **opts: Any) -> Iterator[tuple[str, bytes]]:
        assert opts == {"platform": opts["platform"], "pull": "never", "remove": True, "stream": True}, opts
        head = ["container", "run", "--platform", opts["platform"], "--pull", "never", "--rm"]
        return self._stream([*head, image, *command])

    def _pull(self, image: str, *, stream_logs: bool, platform: str) -> Iterator[tuple[str, bytes]]:
        assert stream_logs
        return self._stream(["image", "pull", f"--platform={platform}", image])

    def _imagetools_create(self, *, sources: list[str], tags: list[str], builder: str | None) -> None:
        tagging = [a for t in tags for a in ("--tag", t)]
        self._answer(
            ["buildx", "imagetools", "create", *tagging, *(["--builder", builder] if builder else []), *sources]
        )


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
    monkeypatch.setattr(docker, "client", fake.client)
    return fake
