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
