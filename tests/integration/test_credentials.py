"""`farm build` against the lab's registry that wants a password (127.0.0.1:5001).

The login lives where `docker login` put it: a fresh docker config per test, given as
`DOCKER_CONFIG` (and as `--docker-config` for the reads). With it, farm pushes two tags with
every platform; without it, the build says which login to run, exits 1 and moves no tag.
The password never shows in an output, a log or the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

pytestmark = pytest.mark.integration

FARM = str(Path(sys.executable).with_name("farm"))
PLATFORMS = ["linux/amd64", "linux/arm64"]


def _farm_file(tmp: Path, lab, builder: str, tags: list[str]) -> Path:
    app = tmp / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(f'FROM {lab.base}\nRUN echo "{builder}" > /built\nCMD ["cat", "/built"]\n')
    data = lab.farm_data(builder)
    for node in data["node"]:
        node["platforms"] = {"node1": ["linux/amd64"], "node2": ["linux/arm64"]}[node["name"]]
    data["target"] = [{"name": "app", "context": str(app), "platforms": PLATFORMS, "tags": tags}]
    path = tmp / "farm.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def _farm(config: Path, lab, *args: str, tmp: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **lab.env, "DOCKER_CONFIG": str(config), "NO_COLOR": "1", **(env or {})}
    full.pop("DOCKER_CONTEXT", None)
    return subprocess.run([FARM, *args], env=full, capture_output=True, text=True, timeout=900, cwd=tmp)


@pytest.fixture
def farm_file(tmp_path, lab, unique_name, auth_registry, docker_config):
    builder = f"c{unique_name}".replace("-", "")
    repo = auth_registry.repo(f"creds/{unique_name}")
    path = _farm_file(tmp_path, lab, builder, [f"{repo}:one", f"{repo}:two"])
    up = _farm(docker_config, lab, "up", "-f", str(path), tmp=tmp_path)
    assert up.returncode == 0, up.stderr[-3000:]
    yield path, repo
    _farm(docker_config, lab, "down", "-f", str(path), tmp=tmp_path)


def _credential_helper(tmp: Path, docker_config: Path, auth_registry, section: str) -> dict[str, str]:
    """A `docker-credential-farmtest` on PATH serving the lab login (and no other), named in
    config.json as the credHelpers entry of the registry, or as the credsStore of them all."""
    folder = tmp / "helper-bin"
    folder.mkdir()
    secret = tmp / "helper-secret"
    secret.write_text(auth_registry.password)
    secret.chmod(0o600)
    helper = folder / "docker-credential-farmtest"
    helper.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 1\n'
        "read -r server\n"
        f'case "$server" in *{auth_registry.address}*) ;; *) echo "credentials not found in native keychain"; exit 1;; esac\n'
        f'printf \'{{"ServerURL":"%s","Username":"{auth_registry.user}","Secret":"%s"}}\' "$server" "$(cat {secret})"\n'
    )
    helper.chmod(0o755)
    entry = (
        {"credHelpers": {auth_registry.address: "farmtest"}} if section == "credHelpers" else {"credsStore": "farmtest"}
    )
    (docker_config / "config.json").write_text(json.dumps(entry))
    return {"PATH": f"{folder}:{os.environ.get('PATH', '')}"}


@pytest.mark.parametrize("login", ["auths", "credHelpers", "credsStore"])
def test_build_pushes_with_the_login_of_the_docker_config(
    login, farm_file, docker_config, auth_registry, lab, tmp_path
):
    path, repo = farm_file
    env = {}
    if login == "auths":
        auth_registry.login(docker_config)  # `docker login`: an auths entry
    else:
        env = _credential_helper(tmp_path, docker_config, auth_registry, login)
    report = tmp_path / "report.json"

    result = _farm(
        docker_config, lab, "build", "-f", str(path), "--progress", "plain", "--report", str(report),
        tmp=tmp_path, env=env,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    name = repo.split("/", 1)[1]
    assert {"one", "two"} <= set(auth_registry.tags(name))
    index, digest = auth_registry.manifest(name, "one")
    assert auth_registry.manifest(name, "two")[1] == digest
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]}
    assert platforms >= set(PLATFORMS)
    assert json.loads(report.read_text())["targets"][0]["digest"] == digest
    for text in (result.stdout, result.stderr, report.read_text()):
        assert auth_registry.password not in text

    inspected = _farm(
        docker_config, lab, "inspect", f"{repo}:one", "--docker-config", str(docker_config),
        tmp=tmp_path, env=env,
    )  # fmt: skip
    assert inspected.returncode == 0, inspected.stderr
    assert f"Digest:    {digest}" in inspected.stdout


def test_build_without_login_says_which_login_to_run_and_moves_no_tag(
    farm_file, docker_config, auth_registry, lab, tmp_path
):
    path, repo = farm_file
    name = repo.split("/", 1)[1]
    before = auth_registry.tags(name)

    result = _farm(docker_config, lab, "build", "-f", str(path), "--progress", "plain", tmp=tmp_path)

    assert result.returncode == 1, result.stderr[-3000:]
    first = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert f"registry {auth_registry.address} wants credentials to push {repo}" in first
    assert f"run `docker login {auth_registry.address}` first" in first
    assert auth_registry.tags(name) == before == []

    inspected = _farm(docker_config, lab, "inspect", f"{lab.base}", "--docker-config", str(docker_config), tmp=tmp_path)
    assert inspected.returncode == 0, inspected.stderr  # the open registry still reads without a login
