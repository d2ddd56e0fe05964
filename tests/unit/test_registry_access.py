"""How registry calls are set up: the CA handed to buildx, the https probe, the client."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from buildkit_farm.docker import DockerPaths, argv
from buildkit_farm.errors import UsageError
from buildkit_farm.registry.access import CA_ENV, cert_env, reach, resolve_ca, speaks_tls

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_a_ca_file_becomes_an_extra_ssl_cert_dir_for_the_call_only(tmp_path, monkeypatch):
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    ca = tmp_path / "ca.pem"
    ca.write_text(PEM)
    with cert_env(ca) as env:
        system, extra = env["SSL_CERT_DIR"].split(":")
        assert system == "/etc/ssl/certs"
        assert [p.read_text() for p in Path(extra).iterdir()] == [PEM]
    assert not Path(extra).exists()


def test_a_ca_directory_is_used_as_is_after_the_existing_cert_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_CERT_DIR", "/opt/certs")
    with cert_env(tmp_path) as env:
        assert env == {"SSL_CERT_DIR": f"/opt/certs:{tmp_path}"}


def test_the_ca_comes_from_the_environment_when_not_given(tmp_path, monkeypatch):
    ca = tmp_path / "ca.pem"
    ca.write_text(PEM)
    monkeypatch.setenv(CA_ENV, str(ca))
    assert resolve_ca(None) == ca
    monkeypatch.delenv(CA_ENV)
    assert resolve_ca(None) is None
    with cert_env(None) as env:
        assert env == {}


def test_a_missing_ca_is_bad_input(tmp_path):
    with pytest.raises(UsageError) as err:
        resolve_ca(tmp_path / "nope.pem")
    assert "does not exist" in err.value.message and err.value.exit_code == 2


def test_a_ca_without_a_certificate_is_refused_without_showing_its_content(tmp_path):
    key = tmp_path / "ca-key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nSECRETSTUFF\n-----END PRIVATE KEY-----\n")
    with pytest.raises(UsageError) as err:
        resolve_ca(key)
    assert "no PEM certificate" in err.value.message
    assert "SECRETSTUFF" not in f"{err.value.message} {err.value.hint}"


def test_the_client_carries_the_env_and_the_docker_config(tmp_path):
    where = reach(docker_config=tmp_path, env={"SSL_CERT_DIR": "/a:/b"})
    assert dict(where.env) == {"SSL_CERT_DIR": "/a:/b"}
    cmd = argv(where.paths)
    assert Path(cmd[0]).name == "docker" and cmd[1:] == ["--config", str(tmp_path)]
    plain = reach()
    assert dict(plain.env) == {} and [Path(x).name for x in argv(plain.paths)] == ["docker"]


def test_a_registry_call_carries_the_env_through_the_door(tmp_path, fake_docker):
    fake_docker.on("imagetools", stdout="{}")
    assert reach(docker_config=tmp_path, env={"SSL_CERT_DIR": "/a:/b"}, builder="b").inspect("r/x:1") == "{}"
    assert fake_docker.argvs == [
        [*argv(DockerPaths.resolve(tmp_path)), "buildx", "imagetools", "inspect", "--builder", "b"]
        + ["--format", "{{json .}}", "r/x:1"]
    ]
    assert fake_docker.envs == [{"SSL_CERT_DIR": "/a:/b"}]


def test_probe_says_no_tls_for_a_plain_server_and_a_closed_port():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_http():
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer_http, daemon=True)
    thread.start()
    assert speaks_tls(f"127.0.0.1:{port}") is False
    thread.join(timeout=5)
    server.close()
    assert speaks_tls(f"127.0.0.1:{port}") is False  # nothing listens any more
