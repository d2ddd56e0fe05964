"""A private sshd for the lab's user farm, on a free port, that a test may stop and start.

Tests that take a node away the way a machine goes away use one of these, never the lab's
shared sshd on 2222: other tests (and other test workers) use that one at the same time.
Its sessions reach the engine named by `SetEnv DOCKER_HOST`; the lab's host key and
known-hosts line (`[127.0.0.1]:*`) make it trusted like node2.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


class Sshd:
    """A private sshd for user farm on a free port, whose sessions reach the engine at `socket_path`."""

    def __init__(self, lab, socket_path: str, folder: Path) -> None:
        self.lab, self.folder = lab, folder
        folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        base = (lab.state / "ssh" / "sshd_config").read_text().splitlines()
        keep = [line for line in base if not line.startswith(("Port ", "PidFile ", "SetEnv "))]
        self.config = folder / "sshd_config"
        self.config.write_text(
            "\n".join(
                [*keep, f"Port {self.port}", f"PidFile {folder / 'sshd.pid'}", f"SetEnv DOCKER_HOST={socket_path}"]
            )
            + "\n"
        )
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"ssh://farm@127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "sshd.log", "ab"),  # noqa: SIM115 - the process owns it
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done = subprocess.run(
                ["docker", "-H", self.endpoint, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                timeout=20,
            )
            if done.returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"private sshd on {self.port} does not answer: {(self.folder / 'sshd.log').read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None
