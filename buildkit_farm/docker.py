"""The one door for processes: every docker, buildx (and through them ssh) process farm starts.

Here, and only here (tests/unit/test_architecture.py checks it), are:
- the command line: `--docker-config`, the context or host (a `tcp://` host with its client TLS
  files, `docker_paths.HostTLS`), extra environment (a registry CA);
- one timeout policy (QUICK, SLOW; builds stream unbounded), a hung engine never hangs farm;
- one error mapping: a failed command, a missing docker binary and a timeout are all
  `DockerFailed` (command, exit code, stdout, stderr), which callers turn into their FarmError;
- one place that keeps secrets out of messages (`mask`);
- narrow verbs (create a context, remove a container, push a list…): python-on-whales where it
  has the verb with our flags (`client`, `whales`), else the raw CLI (`run`, `read`, `start_read`).
Docker is *read* only by `reconcile.observe`, `registry.read`, the build's checks and
`farmfile.bake`'s caller (bake --print); it is *changed* only by `reconcile.apply` and the
build's run and publish steps. python-on-whales is imported lazily: commands that never talk
to Docker (and a converged `farm up`, whose reads are raw) never pay its ~0.3 s import.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from buildkit_farm.docker_paths import DockerPaths
from buildkit_farm.errors import redact, redacted_argv

if TYPE_CHECKING:
    from python_on_whales import DockerClient


def client(
    paths: DockerPaths,
    where: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> DockerClient:
    """A python-on-whales client bound to this Docker config, a context or host (buildx stores a
    node's endpoint as either; a host with its TLS files, as `argv`), `env` (e.g. `SSL_CERT_DIR`)
    and a timeout: python-on-whales has none, so a bounded client calls docker through `_WATCHDOG`."""
    from python_on_whales import DockerClient

    call = ["env", *(f"{k}={v}" for k, v in sorted(env.items()))] if env else []
    if timeout is not None:
        call += [sys.executable, "-I", "-S", "-c", _WATCHDOG, f"{timeout:.0f}"]
    call.append("docker")
    if where and "://" in where:
        tls = paths.tls_of(where)
        ca, cert, key = tls.given if tls else (None, None, None)
        return DockerClient(
            config=paths.config_arg,
            host=where,
            tlsverify=tls is not None,
            tlscacert=ca,
            tlscert=cert,
            tlskey=key,
            client_call=call,
        )
    return DockerClient(config=paths.config_arg, context=where, client_call=call)


# Runs docker to its end or kills it at the bound (exit 124, as coreutils' timeout says), in
# farm's own Python: coreutils' timeout is missing on macOS and takes other flags in busybox.
_WATCHDOG = "import subprocess as s, sys\ntry: sys.exit(s.run(sys.argv[2:], timeout=float(sys.argv[1])).returncode)\n"
_WATCHDOG += "except s.TimeoutExpired: sys.exit(124)\nexcept FileNotFoundError: sys.exit(127)"


def argv(paths: DockerPaths, where: str | None = None, *, program: str | None = None) -> list[str]:
    """`docker [--config DIR] [--context NAME | --host URL [--tlsverify --tlscacert CA …]]`: the
    start of every docker command line (a host's TLS files from `paths.host_tls`).

    `program` replaces the resolved docker binary (e.g. plain "docker" in text for people).
    """
    cmd = [program or shutil.which("docker") or "docker"]
    if paths.explicit:
        cmd += ["--config", str(paths.docker_config)]
    if where:
        cmd += ["--host" if "://" in where else "--context", where]
    if where and (tls := paths.tls_of(where)):
        ca, cert, key = tls.given
        cmd += ["--tlsverify", "--tlscacert", ca, "--tlscert", cert, "--tlskey", key]
    return cmd


# ---------------------------------------------------------------------------- the timeout policy
# One policy for every process farm waits on. A process that outlives its bound is killed and
# fails like any other command (DockerFailed, or a DockerRead saying so), so a hung engine or
# ssh hop never hangs farm. Builds and variant runs stream for as long as they take: no bound.
QUICK = 120.0  # the CLI's own files, one engine or registry answer (contexts, inspect, info, rm)
SLOW = 1800.0  # work that may pull BuildKit or talk to every node: builder writes, bootstrap, list pushes


class DockerFailed(Exception):
    """A docker command that failed: the one error the door raises, whatever went wrong.

    `command` is the argv with secrets masked; `returncode` is None when the command did not
    start (no docker binary) or was killed at its timeout. stdout/stderr are masked too.
    """

    def __init__(self, command: Sequence[str], returncode: int | None, stdout: str, stderr: str) -> None:
        self.command = redacted_argv(command, hide=mask)
        self.returncode, self.stdout, self.stderr = returncode, mask(stdout), mask(stderr)
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        """docker's own message: its last lines, else how it ended."""
        text = self.stderr.strip() or self.stdout.strip()
        return last_lines(text) or f"exit code {self.returncode}"


_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^/\s:@]+):[^/\s]+@")


def mask(text: str) -> str:
    """`text` with what looks like a secret replaced by ***: a URL's password (its user kept, to
    tell which login failed), then all `errors.redact` hides (Authorization headers, tokens,
    `--password …`, `REGISTRY_PASSWORD=…`): what docker and buildx print, before farm keeps it."""
    return redact(_URL_PASSWORD.sub(r"\1:***@", text))


def _env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    return {**os.environ, **env} if env else None


def run(
    paths: DockerPaths,
    args: Sequence[str],
    *,
    where: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = QUICK,
) -> str:
    """Run `docker … ARGS` (a change, or a read whose failure is an error): its stdout, or DockerFailed.

    `env` is added to this process's environment for the call (e.g. SSL_CERT_DIR).
    """
    cmd = argv(paths, where) + list(args)
    code, out, err = _spawn(cmd, env=env, timeout=timeout)
    if code != 0:
        raise DockerFailed(cmd, None if code in (None, _KILLED) else code, out, err)
    return out.removesuffix("\n")


_KILLED, _TIMED_OUT = -9, 124  # killed at its timeout: as subprocess (SIGKILL) and `_WATCHDOG` say it


def _spawn(
    cmd: list[str], *, cwd: str | Path | None = None, env: Mapping[str, str] | None, timeout: float
) -> tuple[int | None, str, str]:
    """Run `cmd` to its end: (exit code, None when it could not start, _KILLED at its timeout; stdout; stderr)."""
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=_env(env),
            timeout=timeout,
        )
    except FileNotFoundError:
        return None, "", f"{cmd[0]}: not found; install the Docker CLI"
    except subprocess.TimeoutExpired as err:
        return _KILLED, _text(err.stdout), f"no answer in {timeout:.0f} s: killed"
    return proc.returncode, proc.stdout, proc.stderr


def _text(out: str | bytes | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else out or ""


@contextmanager
def whales(timeout: float | None = None) -> Iterator[None]:
    """python-on-whales' failures as the door's own: `DockerFailed` (masked), a missing docker
    binary and a command killed at `timeout` said as `run` says them."""
    from python_on_whales import DockerException
    from python_on_whales.client_config import ClientNotFoundError

    try:
        yield
    except ClientNotFoundError:
        raise DockerFailed(["docker"], None, "", "docker: not found; install the Docker CLI") from None
    except DockerException as err:
        cmd = [str(a) for a in err.docker_command]
        prefix = cmd.index("docker") if "docker" in cmd else 0  # env, _WATCHDOG: not docker's words
        cmd, code, out, stderr = cmd[prefix:], err.return_code, _text(err.stdout), _text(err.stderr)
        if timeout is not None and code == _TIMED_OUT:
            raise DockerFailed(cmd, None, out, f"no answer in {timeout:.0f} s: killed") from None
        if prefix and code == _NOT_STARTED:  # env or _WATCHDOG could not start docker
            raise DockerFailed(cmd, None, out, "docker: not found; install the Docker CLI") from None
        raise DockerFailed(cmd, code, out, stderr) from None


@dataclass(frozen=True)
class DockerRead:
    """The outcome of one read-only docker CLI call."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        """docker's own message: the last line of stderr."""
        return last_lines(self.stderr, 1) or f"docker exited with code {self.returncode}"


_NOT_STARTED = 127  # what a shell says for a command it cannot find


def read(
    paths: DockerPaths,
    where: str | None,
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = QUICK,
) -> DockerRead:
    """One read-only docker CLI call straight through subprocess (never raises on exit codes).

    The reads on the path of a converged `farm up` skip python-on-whales: importing it
    alone costs about 0.3 s, and its objects would re-inspect anyway. `cwd` and `env`
    (added to this process's environment) are for `buildx bake --print`.
    """
    code, out, err = _spawn(argv(paths, where) + list(args), cwd=cwd, env=env, timeout=timeout)
    return DockerRead(_NOT_STARTED if code is None else code, out, mask(err))  # stdout is data: kept whole


class PendingRead:
    """A read started in the background (`start_read`); `finish` collects it, `cancel` reaps it."""

    def __init__(self, cmd: list[str], timeout: float) -> None:
        self._cmd, self._timeout, self._deadline = cmd, timeout, time.monotonic() + timeout
        try:
            self._proc: subprocess.Popen[str] | None = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
            )
        except FileNotFoundError:
            self._proc = None

    def finish(self) -> DockerRead:
        if self._proc is None:
            return DockerRead(_NOT_STARTED, "", f"{self._cmd[0]}: not found; install the Docker CLI")
        try:
            out, err = self._proc.communicate(timeout=max(0.0, self._deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.cancel()
            return DockerRead(_KILLED, "", f"no answer in {self._timeout:.0f} s: killed")
        return DockerRead(self._proc.returncode, out, mask(err))

    def cancel(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.communicate()


def start_read(paths: DockerPaths, where: str | None, args: Sequence[str], *, timeout: float = QUICK) -> PendingRead:
    """The same read, started in the background; its `finish` collects it."""
    return PendingRead(argv(paths, where) + list(args), timeout)


# ---------------------------------------------------------------------------- verbs
# Narrow verbs, each one docker command. python-on-whales runs those it has with the flags we
# use (a client from `client`, failures mapped by `whales`); the raw CLI (`run`, `read`,
# `start_read`) runs the rest: buildx create --node/--leave, rm --keep-state, context update,
# imagetools inspect's --format, bake's cwd, and the reads observe starts several at once.
def engine_platform(paths: DockerPaths) -> tuple[str, str] | None:
    """The default engine's (architecture, OS type), e.g. ("x86_64", "linux"); None when it does not answer."""
    try:
        with whales(QUICK):
            info = client(paths, timeout=QUICK).system.info()
    except DockerFailed:
        return None
    return (info.architecture, info.os_type or "linux") if info.architecture else None


def create_context(
    paths: DockerPaths,
    name: str,
    *,
    description: str,
    host: str | None,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> None:
    """`docker context create --description D --docker host=…,ca=…,cert=…,key=…,skip-tls-verify=False NAME`."""
    from python_on_whales import DockerContextConfig

    endpoint = DockerContextConfig(host=host, certificate_authority=ca, certificate=cert, key=key)
    with whales(QUICK):
        client(paths, timeout=QUICK).context.create(name, description=description, docker=endpoint)


def remove_context(paths: DockerPaths, name: str) -> bool:
    """`docker context remove --force NAME`; False when there was no such context."""
    try:
        with whales(QUICK):
            client(paths, timeout=QUICK).context.remove(name, force=True)
    except DockerFailed as err:
        if err.returncode and ("not found" in err.stderr or "does not exist" in err.stderr):  # not: no docker
            return False
        raise
    return True


def remove_container(paths: DockerPaths, where: str | None, name: str) -> bool:
    """`docker container rm --force NAME` on one engine; False when there was no such container."""
    try:
        with whales(QUICK):
            client(paths, where, timeout=QUICK).container.remove(name, force=True)
    except DockerFailed as err:
        if "no such container" in err.stderr.lower():  # python-on-whales' NoSuchContainer
            return False
        raise
    return True


def record_builder(paths: DockerPaths, name: str, config: Path, *, env: Mapping[str, str]) -> None:
    """`buildx create --name NAME --driver docker-container --config FILE`: a builder record
    (never started) in the BUILDX_CONFIG that `env` names. The raw CLI: python-on-whales'
    buildx.create runs `buildx ls` after, which contacts every node of every builder."""
    run(paths, ["buildx", "create", "--name", name, "--driver", "docker-container", "--config", str(config)], env=env)


def imagetools_inspect(paths: DockerPaths, ref: str, *, builder: str | None, env: Mapping[str, str]) -> str:
    """`buildx imagetools inspect --format '{{json .}}' REF`: the registry's answer as JSON text.

    The raw CLI: python-on-whales' imagetools.inspect only asks for `--raw` (the top manifest),
    and the registry reader needs every platform's manifest and config that `{{json .}}` gives.
    """
    args = ["buildx", "imagetools", "inspect", *(["--builder", builder] if builder else [])]
    return run(paths, [*args, "--format", "{{json .}}", ref], env=env, timeout=SLOW)


def imagetools_create(
    paths: DockerPaths, sources: Sequence[str], tags: Sequence[str], *, builder: str | None, env: Mapping[str, str]
) -> None:
    """`buildx imagetools create --tag TAG… [--builder B] SOURCE…`: one list pushed under every tag (a tag moves)."""
    with whales(SLOW):
        client(paths, env=env, timeout=SLOW).buildx.imagetools.create(
            sources=list(sources), tags=list(tags), builder=builder
        )


def last_lines(text: str | None, n: int = 3, *, sep: str = " / ") -> str:
    """The last `n` meaningful lines of a command's output: docker's own message.

    Blank lines, BuildKit's `#N` progress lines and the rules of its summary block are
    skipped; buildx's `ERROR: ` prefix goes. Where buildx's final `ERROR:` is followed by the
    registry's own words (`errors:` and a line each), the message starts at that `ERROR:`.
    """
    lines = [
        line.strip()
        for line in (text or "").splitlines()
        if line.strip() and not line.startswith("#") and line.strip() not in ("------", "errors:")
    ]
    last_error = max((i for i, line in enumerate(lines) if line.startswith("ERROR: ")), default=None)
    if last_error is not None and len(lines) - last_error > n:
        lines = lines[last_error : last_error + n]
    return sep.join(line.removeprefix("ERROR: ") for line in lines[-n:])


# --------------------------------------------------------------------------- the build's verbs
# (`farm build` and `farm validate`: narrow verbs, one per kind of process the build starts)


def print_bake(paths: DockerPaths, args: Sequence[str], *, cwd: Path, variables: Mapping[str, str]) -> DockerRead:
    """`docker buildx bake --print …` in the farm file's folder, bake's variables in its environment (read only).

    The raw CLI: python-on-whales' bake(print=True) runs in farm's own folder (it takes no cwd,
    and bake resolves contexts and files from where it runs) and raises where this reads.
    """
    return read(paths, None, args, cwd=cwd, env=variables)


class BakeProcess:
    """A running `docker buildx bake`: its progress lines as they come, its exit code; `stop`
    (from another thread) ends it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc

    def lines(self) -> Iterator[str]:
        """buildx's progress (stderr), line by line, without the newline, masked (a step's log may
        print a token, or a URL with its password); nothing with a tty display."""
        for line in self._proc.stderr or ():
            yield mask(line.rstrip("\n"))

    def wait(self) -> int:
        return self._proc.wait()

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()


def start_bake(argv_: Sequence[str], *, tty: bool) -> BakeProcess:
    """Start `docker buildx bake …` (`argv_` from `argv`): with `tty`, buildx draws on the terminal itself."""
    proc = subprocess.Popen(
        list(argv_),
        stdin=subprocess.DEVNULL,
        stdout=None if tty else subprocess.DEVNULL,
        stderr=None if tty else subprocess.PIPE,
        text=True,
        errors="replace",
    )
    return BakeProcess(proc)


def pull_variant_argv(
    paths: DockerPaths, where: str, image: str, platform: str, *, program: str | None = None
) -> list[str]:
    """`docker --context NODE image pull --platform=P IMAGE@DIGEST`: one variant onto a node's
    engine (the command line python-on-whales runs for `pull_variant`)."""
    return argv(paths, where, program=program) + ["image", "pull", f"--platform={platform}", image]


def run_variant_argv(
    paths: DockerPaths, where: str, image: str, platform: str, command: str | None, *, program: str | None = None
) -> list[str]:
    """`docker --context NODE container run --platform P --pull never --rm IMAGE@DIGEST [COMMAND]`
    (the command line python-on-whales runs for `run_variant`)."""
    head = ["container", "run", "--platform", platform, "--pull", "never", "--rm"]
    return argv(paths, where, program=program) + [*head, image, *shlex.split(command or "")]


def pull_variant(paths: DockerPaths, where: str, image: str, platform: str) -> DockerRead:
    """Pull one variant onto a node's engine (never raises on exit codes; its progress is dropped)."""
    try:
        with whales():
            # Streamed, not quiet: python-on-whales inspects the image after a quiet pull.
            progress = client(paths, where).image.pull(image, stream_logs=True, platform=platform)
            deque(cast("Iterator[tuple[str, bytes]]", progress), maxlen=0)
    except DockerFailed as err:
        return DockerRead(_NOT_STARTED if err.returncode is None else err.returncode, err.stdout, err.stderr)
    return DockerRead(0, "", "")


def run_variant(
    paths: DockerPaths, where: str, image: str, platform: str, command: str | None, *, keep: int = 20
) -> tuple[int, list[str]]:
    """Run one variant once on a node's engine: (exit code, its last `keep` output lines, stdout and
    stderr together, as they came)."""
    tail: deque[str] = deque(maxlen=keep)
    try:
        with whales():
            cmd, containers = shlex.split(command or ""), client(paths, where).container
            for _source, line in containers.run(image, cmd, platform=platform, pull="never", remove=True, stream=True):
                tail.append(line.decode(errors="replace").rstrip("\n"))
    except DockerFailed as err:
        return (_NOT_STARTED if err.returncode is None else err.returncode), list(tail)
    return 0, list(tail)


def attempt(paths: DockerPaths, where: str | None, args: Sequence[str]) -> DockerRead:
    """One docker command that changes something, whose failure is an answer rather than an
    error: creating a marker container whose name is taken means someone else holds it."""
    return read(paths, where, args)
