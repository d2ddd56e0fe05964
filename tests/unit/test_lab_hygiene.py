"""lab/lab.sh's safety functions, each called alone (`lab.sh __call FUNC ...`) on a scratch
state folder: a pid file never kills a process that is not the lab's, a socket a process
listens on is never taken for stale, keys are private from the start. No Docker, no root
services touched."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "lab" / "lab.sh"


def call(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FARM_LAB_STATE": str(tmp_path / "state"), "FARM_LAB_LOCK": str(tmp_path / "lock")}
    return subprocess.run(["bash", str(LAB), "__call", *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture()
def stranger():
    """A process that is not one of the lab's daemons (as a reused pid would be)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_pid_file_naming_another_program_is_not_alive(tmp_path, stranger):
    pidfile = tmp_path / "dockerd.pid"
    pidfile.write_text(f"{stranger.pid}\n")
    assert call(tmp_path, "pid_alive", str(pidfile)).returncode == 1


def test_stop_pidfile_never_signals_a_reused_pid(tmp_path, stranger):
    pidfile = tmp_path / "dockerd.pid"
    pidfile.write_text(f"{stranger.pid}\n")
    out = call(tmp_path, "stop_pidfile", str(pidfile), "node1", "1")
    assert out.returncode == 0, out.stderr
    assert stranger.poll() is None  # still running: no TERM, no KILL
    assert not pidfile.exists()
    assert "stale" in out.stdout + out.stderr


def test_a_pid_file_from_before_the_boot_is_stale(tmp_path):
    pidfile = tmp_path / "sshd.pid"
    pidfile.write_text("1\n")
    os.utime(pidfile, (0, 0))  # 1970: before any boot
    assert call(tmp_path, "pid_file_since_boot", str(pidfile)).returncode == 1
    os.utime(pidfile, None)
    assert call(tmp_path, "pid_file_since_boot", str(pidfile)).returncode == 0


def test_a_pid_file_with_garbage_is_not_alive(tmp_path):
    pidfile = tmp_path / "registry.pid"
    pidfile.write_text("1; rm -rf /\n")
    assert call(tmp_path, "pid_alive", str(pidfile)).returncode == 1


@pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is part of the lab's install")
def test_a_socket_someone_listens_on_is_not_stale(tmp_path):
    path = str(tmp_path / "d.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    try:
        assert call(tmp_path, "socket_listened", path).returncode == 1  # bound, not listening: stale
        server.listen(1)
        assert call(tmp_path, "socket_listened", path).returncode == 0
    finally:
        server.close()
    assert call(tmp_path, "socket_listened", path).returncode == 1  # its daemon is gone


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is part of the lab's install")
def test_sign_cert_writes_the_key_private_from_the_start(tmp_path):
    tls = tmp_path / "state" / "tls"
    tls.mkdir(parents=True)
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-days", "1", "-subj", "/CN=test CA", "-keyout", str(tls / "ca.key"), "-out", str(tls / "ca.pem")),
        ],
        check=True,
        capture_output=True,
    )
    old = os.umask(0o022)
    try:
        out = call(tmp_path, "sign_cert", "client", "/CN=test client", "extendedKeyUsage=clientAuth")
    finally:
        os.umask(old)
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE((tls / "client.key").stat().st_mode) == 0o600
    assert (tls / "client.pem").is_file()
