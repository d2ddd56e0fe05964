"""The process door itself: its error mapping, its timeout, its secret masking, a few verbs.

The processes here are stand-ins written into a scratch PATH (no Docker is involved)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from buildkit_farm import docker
from buildkit_farm.docker import DockerFailed, DockerPaths
from buildkit_farm.docker_paths import HostTLS


@pytest.fixture
def paths(tmp_path: Path) -> DockerPaths:
    return DockerPaths(tmp_path / "dc", tmp_path / "dc" / "buildx", True)


def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """A `docker` on PATH that runs `script` (sh)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def test_mask_hides_url_passwords_and_secret_assignments():
    text = "ssh://farm:hunter2@10.0.0.1:22 REGISTRY_TOKEN=abc,MY_PASSWORD=p user@host id=tok,env=TOKEN"
    assert (
        docker.mask(text) == "ssh://farm:***@10.0.0.1:22 REGISTRY_TOKEN=***,MY_PASSWORD=*** user@host id=tok,env=TOKEN"
    )


def test_a_failure_is_docker_failed_with_its_message_masked(paths, tmp_path, monkeypatch):
    stand_in(tmp_path, monkeypatch, 'echo "ERROR: cannot reach ssh://u:s3cret@h" >&2; exit 3')
    with pytest.raises(DockerFailed) as caught:
        docker.run(paths, ["context", "create", "x", "--docker", "host=tcp://u:s3cret@h:2376"])
    err = caught.value
    assert err.returncode == 3 and err.detail == "cannot reach ssh://u:***@h"
    assert "s3cret" not in " ".join(err.command) and "s3cret" not in str(err)
    assert err.detail == "cannot reach ssh://u:***@h"


def test_no_docker_binary_is_docker_failed_not_a_crash(paths, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    with pytest.raises(DockerFailed) as caught:
        docker.run(paths, ["info"])
    assert caught.value.returncode is None and "install the Docker CLI" in caught.value.detail
    got = docker.read(paths, None, ["info"])
    assert got.returncode == 127 and "install the Docker CLI" in got.message
    assert docker.start_read(paths, None, ["info"]).finish().returncode == 127


def test_a_command_past_its_timeout_is_killed_and_fails(paths, tmp_path, monkeypatch):
    stand_in(tmp_path, monkeypatch, "exec sleep 30")
    with pytest.raises(DockerFailed) as caught:
        docker.run(paths, ["buildx", "inspect"], timeout=0.3)
    assert caught.value.returncode is None and "no answer in" in caught.value.detail
    assert docker.read(paths, None, ["info"], timeout=0.3).returncode != 0
    assert "no answer in" in docker.start_read(paths, None, ["info"], timeout=0.3).finish().stderr


def test_run_returns_stdout_and_passes_the_env(paths, tmp_path, monkeypatch):
    stand_in(tmp_path, monkeypatch, 'echo "$SSL_CERT_DIR $*"')
    assert docker.run(paths, ["version"], where="node2", env={"SSL_CERT_DIR": "/a"}) == (
        f"/a --config {paths.docker_config} --context node2 version"
    )


def test_the_verbs_are_one_argv_each(paths, fake_docker):
    fake_docker.on("system", "info", stdout='{"Architecture": "aarch64", "OSType": "linux"}')
    fake_docker.on("container", "rm", returncode=1, stderr="Error response from daemon: No such container: c1")
    assert docker.engine_platform(paths) == ("aarch64", "linux")
    assert docker.remove_container(paths, "node2", "c1") is False
    docker.create_context(paths, "n1", description="d", host="tcp://h:2376", ca=Path("/ca.pem"))
    assert fake_docker.calls[1:] == [
        ["container", "rm", "--force", "c1"],
        [
            "context",
            "create",
            "--description",
            "d",
            "--docker",
            "host=tcp://h:2376,ca=/ca.pem,skip-tls-verify=False",
            "n1",
        ],
    ]
    assert fake_docker.wheres[1] == "node2"


TLS_HOST = "tcp://h:2376"
TLS_FILES = HostTLS(ca=Path("/t/ca.pem"), cert=Path("/t/cert.pem"), key=Path("/t/key.pem"))


def test_a_tls_host_is_reached_with_its_files_as_docker_takes_them(paths):
    """A `tcp://` engine read by URL (its context not made yet) carries the farm file's TLS files."""
    tls = paths.with_host_tls({TLS_HOST: TLS_FILES, "tcp://ca-only:2376": HostTLS(ca=Path("/t/ca.pem"))})
    assert docker.argv(tls, TLS_HOST, program="docker") == [
        *("docker", "--config", str(paths.docker_config), "--host", TLS_HOST),
        *("--tlsverify", "--tlscacert", "/t/ca.pem", "--tlscert", "/t/cert.pem", "--tlskey", "/t/key.pem"),
    ]
    # A file not given is "", as in a context without it: never docker's own ~/.docker/cert.pem.
    assert docker.argv(tls, "tcp://ca-only:2376")[-7:] == [
        *("--tlsverify", "--tlscacert", "/t/ca.pem", "--tlscert", "", "--tlskey", "")
    ]
    # Any other host, a context, and the same paths without TLS hosts: no TLS flag.
    for where, p in (("tcp://other:2376", tls), ("node2", tls), (TLS_HOST, paths)):
        assert not [a for a in docker.argv(p, where) if a.startswith("--tls")]
    assert tls.tls_of(TLS_HOST) == TLS_FILES and paths.host_tls == () and tls.tls_of(None) is None


def test_python_on_whales_reaches_a_tls_host_with_the_same_files(paths, tmp_path, monkeypatch):
    stand_in(tmp_path, monkeypatch, 'echo "$*" >&2; exit 1')  # says its own command line
    tls = paths.with_host_tls({TLS_HOST: TLS_FILES})
    with pytest.raises(DockerFailed) as caught:
        docker.remove_container(tls, TLS_HOST, "c1")
    said = caught.value.stderr
    for flag in ("--host tcp://h:2376", "--tlscacert /t/ca.pem", "--tlscert /t/cert.pem", "--tlskey /t/key.pem"):
        assert flag in said
    assert "--tlsverify" in said.split() and said.strip().endswith("container rm --force c1")


def test_an_engine_that_does_not_answer_has_no_platform(paths, fake_docker):
    fake_docker.on("info", returncode=1, stderr="Cannot connect to the Docker daemon")
    assert docker.engine_platform(paths) is None


# python-on-whales' side of the door: real clients, a stand-in `docker` on PATH (no Docker).
def test_a_python_on_whales_failure_is_docker_failed_with_its_message_masked(paths, tmp_path, monkeypatch):
    stand_in(
        tmp_path, monkeypatch, 'echo "Error response from daemon: No such container: c1 (ssh://u:s3cret@h)" >&2; exit 1'
    )
    assert docker.remove_container(paths, "node2", "c1") is False
    stand_in_dir = tmp_path / "bin"
    (stand_in_dir / "docker").write_text('#!/bin/sh\necho "ERROR: cannot reach ssh://u:s3cret@h" >&2; exit 3\n')
    with pytest.raises(DockerFailed) as caught:
        docker.imagetools_create(paths, ["r/a@sha256:1"], ["r/a:1"], builder=None, env={"SSL_CERT_DIR": "/a"})
    err = caught.value
    assert err.returncode == 3 and err.detail == "cannot reach ssh://u:***@h"
    assert err.command[0] == "docker" and "s3cret" not in " ".join(err.command) + str(err)


def test_python_on_whales_verbs_keep_the_timeout_policy(paths, tmp_path, monkeypatch):
    stand_in(tmp_path, monkeypatch, "exec sleep 30")
    monkeypatch.setattr(docker, "QUICK", 1.0)
    with pytest.raises(DockerFailed) as caught:
        docker.remove_context(paths, "n1")
    assert caught.value.returncode is None and "no answer in 1 s" in caught.value.detail
    assert docker.engine_platform(paths) is None  # a hung engine is one that does not answer


def test_python_on_whales_verbs_without_a_docker_binary(paths, tmp_path, monkeypatch):
    tools = tmp_path / "tools"  # a PATH with env (what a client with an env calls) but no docker
    tools.mkdir()
    (tools / "env").symlink_to(shutil.which("env") or "/usr/bin/env")
    monkeypatch.setenv("PATH", str(tools))
    for verb in (lambda: docker.remove_context(paths, "n1"), lambda: docker.remove_container(paths, None, "c")):
        with pytest.raises(DockerFailed) as caught:
            verb()
        assert caught.value.returncode is None and "install the Docker CLI" in caught.value.detail
    assert docker.pull_variant(paths, "node1", "r/a@sha256:1", "linux/amd64").returncode == 127
    assert docker.run_variant(paths, "node1", "r/a@sha256:1", "linux/amd64", None)[0] == 127
    with pytest.raises(DockerFailed) as caught:
        docker.imagetools_create(paths, ["r/a@sha256:1"], ["r/a:1"], builder=None, env={"SSL_CERT_DIR": "/a"})
    assert caught.value.returncode is None and "install the Docker CLI" in caught.value.detail


def test_the_printed_verify_commands_are_what_python_on_whales_runs(paths, tmp_path, monkeypatch):
    # A stand-in that says its own command line and fails: python-on-whales' real argv, seen.
    stand_in(tmp_path, monkeypatch, 'echo "$*" >&2; exit 1')
    image, platform = "127.0.0.1:5000/a@sha256:1", "linux/arm64"
    pulled = docker.pull_variant(paths, "node2", image, platform)
    want = docker.pull_variant_argv(paths, "node2", image, platform)[1:]
    assert pulled.returncode == 1 and pulled.stderr.split() == want
    code, lines = docker.run_variant(paths, "node2", image, platform, "sh -c 'echo hi'")
    want = docker.run_variant_argv(paths, "node2", image, platform, "sh -c 'echo hi'")[1:]
    assert code == 1 and lines == [" ".join(want)]
