"""`farm plan --detailed-exitcode` on the lab, as terraform's: 0 converged, 2 changes, 1 error;
each with --json as one document whose exit_code is the process's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import tomli_w

pytestmark = pytest.mark.integration

FARM = str(Path(sys.executable).with_name("farm"))


def _plan(file: Path, docker_config: Path, lab, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **lab.env, "DOCKER_CONFIG": str(docker_config), "NO_COLOR": "1"}
    return subprocess.run(
        [FARM, "plan", "-f", str(file), "--detailed-exitcode", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


class Relay:
    """A unix socket that relays to node1's engine: the node's engine, until `stop()` takes it down."""

    def __init__(self, path: Path, engine: str) -> None:
        self.path, self.engine = path, engine
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(64)
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.engine)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self) -> None:
        self.server.close()
        for s in self.open:
            s.close()
        self.path.unlink()


def test_detailed_exitcode_is_0_converged_2_after_an_edit_1_engine_down(tmp_path, lab, docker_config, unique_name):
    relay = Relay(tmp_path / "engine.sock", lab.node1.removeprefix("unix://"))
    data = lab.farm_data(f"plan-{unique_name}")
    data.pop("target", None)  # the farm only: plan looks at nodes and the builder
    data["node"][0]["endpoint"] = f"unix://{relay.path}"
    file = tmp_path / "farm.toml"
    file.write_text(tomli_w.dumps(data))
    env = {**os.environ, **lab.env, "DOCKER_CONFIG": str(docker_config)}
    up = subprocess.run([FARM, "up", "-f", str(file)], env=env, capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr

    converged = _plan(file, docker_config, lab)
    assert converged.returncode == 0, converged.stdout + converged.stderr
    as_json = _plan(file, docker_config, lab, "--json")
    document = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and document["ok"] and document["exit_code"] == 0

    data["node"][1]["platforms"] = ["linux/arm64"]  # drop arm/v7 from node2: its pin changes
    file.write_text(tomli_w.dumps(data))
    edited = _plan(file, docker_config, lab, "--json")
    document = json.loads(edited.stdout)
    assert edited.returncode == 2, edited.stdout + edited.stderr
    assert document["ok"] is True and document["exit_code"] == 2
    assert [s["name"] for s in document["result"]["steps"] if s["action"] != "no-op"]

    relay.stop()  # node1's engine goes away under the farm
    down = _plan(file, docker_config, lab, "--json")
    document = json.loads(down.stdout)
    assert down.returncode == 1, down.stdout + down.stderr
    assert document["ok"] is False and document["exit_code"] == 1 and document["error"]["message"]
