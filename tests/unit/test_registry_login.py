"""Which registries the user's docker config holds a login for, and farm's own HTTP path
stepping aside for them (so the registry is spoken to with the user's credentials). Pure:
a config.json written to a temporary folder, no registry reached."""

from __future__ import annotations

import json

import pytest

from buildkit_farm.registry import distribution
from buildkit_farm.registry.login import config_file, holds_login


def _config(tmp_path, data) -> str:
    (tmp_path / "config.json").write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(tmp_path)


@pytest.mark.parametrize(
    ("data", "host", "expected"),
    [
        ({"auths": {"127.0.0.1:5001": {"auth": "eDp5"}}}, "127.0.0.1:5001", True),
        ({"auths": {"127.0.0.1:5001": {"auth": "eDp5"}}}, "127.0.0.1:5000", False),
        ({"auths": {"https://ghcr.io": {}}}, "ghcr.io", True),
        ({"auths": {"https://index.docker.io/v1/": {}}}, "docker.io", True),
        ({"auths": {"Registry.Example.com/v2/": {}}}, "registry.example.com", True),
        (
            {"credHelpers": {"123.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login"}},
            "123.dkr.ecr.eu-west-1.amazonaws.com",
            True,
        ),
        ({"credHelpers": {"ghcr.io": "gh"}}, "quay.io", False),
        ({"credsStore": "desktop"}, "anything.example:5000", True),  # a store may hold any registry
        ({"credsStore": ""}, "ghcr.io", False),
        ({}, "ghcr.io", False),
        ("not json", "ghcr.io", True),  # unreadable: never assume anonymous
    ],
)
def test_which_registries_the_config_holds_a_login_for(tmp_path, data, host, expected):
    assert holds_login(host, _config(tmp_path, data)) is expected


def test_no_config_file_means_no_login(tmp_path):
    assert holds_login("ghcr.io", str(tmp_path)) is False


def test_the_config_is_docker_config_flag_else_env_else_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_file(str(tmp_path / "flag")) == tmp_path / "flag" / "config.json"
    assert config_file(None) == tmp_path / "env" / "config.json"
    monkeypatch.delenv("DOCKER_CONFIG")
    assert config_file(None) == tmp_path / "home" / ".docker" / "config.json"


def test_a_login_written_later_is_seen(tmp_path):
    folder = _config(tmp_path, {})
    assert not holds_login("127.0.0.1:5001", folder)
    _config(tmp_path, {"auths": {"127.0.0.1:5001": {"auth": "eDp5eno="}}})
    assert holds_login("127.0.0.1:5001", folder)


def test_the_http_path_steps_aside_for_a_registry_the_user_logged_in_to(tmp_path):
    folder = _config(tmp_path, {"auths": {"registry.example.com:5000": {"auth": "eDp5"}}})
    assert distribution._where("registry.example.com:5000/app:1", folder) is None
    assert distribution._where("other.example.com/app:1", folder) is not None
    assert distribution.get("registry.example.com:5000/app:1", docker_config=folder) is None
    manifest = distribution.Manifest("registry.example.com:5000/app@sha256:x", b"{}", "application/json")
    assert distribution.put("registry.example.com:5000/app:1", manifest, docker_config=folder) is False
