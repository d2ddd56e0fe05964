"""The lab's files agree with each other (no Docker needed): lab/farm.toml loads and
describes the lab `lab/lab.sh` starts, and the buildkitd config trusts the CA it makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from buildkit_farm.farmfile.load import load_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LAB = Path(__file__).resolve().parents[2] / "lab"


def _lab_env() -> dict[str, str]:
    out = subprocess.run(["bash", str(LAB / "lab.sh"), "env"], capture_output=True, text=True, timeout=20, check=True)
    facts = {}
    for line in out.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        facts[key] = value
    return facts


def test_farm_file_describes_the_lab():
    config = load_config(LAB / "farm.toml")
    env = _lab_env()
    nodes = {s.name: s for s in config.node_settings()}
    assert nodes["node1"].endpoint == env["FARM_LAB_NODE1"] and nodes["node1"].platforms == ("linux/amd64",)
    assert nodes["node2"].endpoint == env["FARM_LAB_NODE2"]
    assert nodes["node2"].platforms == ("linux/arm64", "linux/arm/v7")
    assert all(dict(s.driver_opts)["network"] == "host" for s in nodes.values())
    (target,) = config.targets
    dockerfile = (target.dockerfile or target.context / "Dockerfile").read_text()
    assert f"FROM {env['FARM_LAB_BASE']}" in dockerfile


def test_buildkitd_config_trusts_the_tls_registry_with_the_labs_ca():
    env = _lab_env()
    settings = tomllib.loads((LAB / "buildkitd.toml").read_text())
    registry = settings["registry"][env["FARM_LAB_TLS_REGISTRY"]]
    assert registry["http"] is False
    assert registry["ca"] == [env["FARM_LAB_CA"]]


def test_env_sh_exports_the_same_facts():
    out = subprocess.run(
        ["bash", "-c", f". {LAB / 'env.sh'} && env"], capture_output=True, text=True, timeout=20, check=True
    )
    exported = dict(line.partition("=")[::2] for line in out.stdout.splitlines() if line.startswith("FARM_LAB_"))
    assert exported == _lab_env()


def test_pool_file_puts_node2_and_node3_in_one_pool():
    config = load_config(LAB / "pool.toml")
    env = _lab_env()
    nodes = {s.name: s for s in config.node_settings()}
    assert nodes["pool2"].endpoint == env["FARM_LAB_NODE2"] and nodes["pool3"].endpoint == env["FARM_LAB_NODE3"]
    assert config.pools() == {
        "linux/amd64": ("pool1",),
        "linux/arm64": ("pool2", "pool3"),
        "linux/arm/v7": ("pool2", "pool3"),
    }
    assert env["FARM_LAB_POOL_FILE"] == str(LAB / "pool.toml")
    # lab/farm.toml stays the two-node demo
    assert [s.name for s in load_config(LAB / "farm.toml").node_settings()] == ["node1", "node2"]


def test_lab_sh_has_node3_as_a_part_of_its_own():
    text = (LAB / "lab.sh").read_text()
    parts = next(line for line in text.splitlines() if line.startswith("PARTS=("))
    assert parts.split("(")[1].rstrip(")").split() == [
        "binfmt",
        "node1",
        "node2",
        "node3",
        "registry",
        "auth-registry",
        "sshd",
        "images",
    ]
    assert "up_node3()" in text and "down_node3()" in text
    # node2 and node3 share one parameterised engine start; node3 gets its own bridge and CIDR
    assert text.count("start_engine node") == 2 and "NODE3_BRIDGE=farm1" in text
    assert "NODE2_BRIDGE_CIDR=10.213.0.1/24" in text and "NODE3_BRIDGE_CIDR=10.214.0.1/24" in text


def test_lab_sh_has_a_registry_that_wants_a_password():
    text = (LAB / "lab.sh").read_text()
    for function in ("up_auth_registry()", "down_auth_registry()", "status_auth_registry", "env_auth_registry"):
        assert function in text
    down = next(line for line in text.splitlines() if "parts=(sshd" in line)
    assert "auth-registry" in down  # a full `down` stops it too
    env = _lab_env()
    assert env["FARM_LAB_AUTH_REGISTRY"] == "127.0.0.1:5001" and env["FARM_LAB_AUTH_USER"] == "farm-ci"
    assert "FARM_LAB_AUTH_PASSWORD" in env
    assert "apache2-utils" in text  # htpasswd, for the bcrypt line
