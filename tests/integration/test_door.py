"""The door's python-on-whales verbs against the lab's real engines (no fake anywhere)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from buildkit_farm import docker


def test_a_context_is_created_with_its_tls_files_and_removed_once(lab, docker_config, unique_name):
    paths = docker.DockerPaths.resolve(docker_config)
    name = unique_name("door")
    host = lab.node2_tcp
    docker.create_context(
        paths, name, description="farm door test", host=host, ca=lab.ca, cert=lab.client_cert, key=lab.client_key
    )
    meta = json.loads(paths.context_meta(name).read_text())
    assert meta["Endpoints"]["docker"]["Host"] == host and meta["Metadata"]["Description"] == "farm door test"
    assert (paths.context_tls(name) / "ca.pem").exists()
    assert docker.engine_platform(paths) is not None  # the default engine answers through python-on-whales
    assert docker.remove_context(paths, name) is True
    assert not paths.context_meta(name).exists()
    docker.remove_context(paths, name)  # already gone is no error (docker's --force says nothing either)


def test_a_missing_container_is_false_and_a_dead_engine_has_no_platform(lab, docker_config, monkeypatch):
    paths = docker.DockerPaths.resolve(docker_config)
    docker.remove_container(paths, lab.node2_socket, "buildx_buildkit_no-such-node0")  # gone already: no error
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    assert docker.engine_platform(paths) is None


def test_a_variant_is_pulled_and_run_with_its_output_and_exit_code(lab, docker_config):
    paths = docker.DockerPaths.resolve(docker_config)
    pulled = docker.pull_variant(paths, lab.node1, lab.base, "linux/amd64")
    assert pulled.returncode == 0, pulled.stderr
    code, lines = docker.run_variant(
        paths, lab.node1, lab.base, "linux/amd64", "sh -c 'echo out; echo err >&2; exit 3'"
    )
    assert code == 3 and sorted(lines) == ["err", "out"]
    code, lines = docker.run_variant(paths, lab.node1, lab.base, "linux/amd64", "true")
    assert (code, lines) == (0, [])
    missing = docker.pull_variant(paths, lab.node1, f"{lab.registry}/no-such-repo:1", "linux/amd64")
    assert missing.returncode != 0 and missing.stderr.strip()


def test_an_engine_that_never_answers_is_cut_off_at_the_bound(lab, docker_config, monkeypatch):
    # A socket that accepts and says nothing: the docker CLI waits forever on its own.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
        monkeypatch.setattr(docker, "QUICK", 2.0)
        paths = docker.DockerPaths.resolve(docker_config)
        started = time.monotonic()
        assert docker.engine_platform(paths) is None
        with pytest.raises(docker.DockerFailed) as caught:
            docker.remove_container(paths, None, "c")
        assert caught.value.returncode is None and "no answer in 2 s" in caught.value.detail
        assert time.monotonic() - started < 15
