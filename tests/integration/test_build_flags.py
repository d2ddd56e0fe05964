"""`farm build`'s pipeline flags on the lab, with the password registry (127.0.0.1:5001):

- `--no-push`: every platform built on its node, nothing written to the registry (no
  variant, no tag, no cache export), without any login; the report says so;
- `--metadata-file`: what buildx writes, the digest equal to the registry's, farm's keys;
- `--platform` (a subset), `--set`, a bare `--build-arg KEY` from the environment and
  `--progress quiet` along the way.
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
NODES = {"node1": ["linux/amd64"], "node2": ["linux/arm64"]}


class Job:
    """One test's farm file (lab nodes, a unique builder) and its own docker config."""

    def __init__(self, tmp: Path, lab, config: Path, builder: str, repo: str) -> None:
        self.tmp, self.lab, self.config, self.repo = tmp, lab, config, repo
        app = tmp / "app"
        app.mkdir()
        (app / "Dockerfile").write_text(
            f'FROM {lab.base}\nARG WORD=unset\nRUN echo "$WORD" > /word\nCMD ["cat", "/word"]\n'
        )
        data = lab.farm_data(builder)
        for node in data["node"]:
            node["platforms"] = NODES[node["name"]]
        data["target"] = [{"name": "app", "context": str(app), "platforms": PLATFORMS, "tags": [f"{repo}:one"]}]
        self.file = tmp / "farm.toml"
        self.file.write_text(tomli_w.dumps(data))

    def farm(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full = {**os.environ, **self.lab.env, "DOCKER_CONFIG": str(self.config), "NO_COLOR": "1", **(env or {})}
        full.pop("DOCKER_CONTEXT", None)
        return subprocess.run(
            [FARM, *args, "-f", str(self.file)], env=full, capture_output=True, text=True, timeout=900, cwd=self.tmp
        )


@pytest.fixture
def job(tmp_path, lab, docker_config, unique_name, auth_registry):
    the_job = Job(
        tmp_path, lab, docker_config, f"f{unique_name}".replace("-", ""), auth_registry.repo(f"flags/{unique_name}")
    )
    up = the_job.farm("up")
    assert up.returncode == 0, up.stderr[-3000:]
    yield the_job
    the_job.farm("down")


def test_no_push_builds_every_platform_and_writes_nothing(job, auth_registry):
    name = job.repo.split("/", 1)[1]
    metadata, report_file = job.tmp / "meta.json", job.tmp / "report.json"

    result = job.farm(
        "build", "--no-push", "--report", str(report_file), "--progress", "quiet", "--metadata-file", str(metadata),
        "--cache-to", f"type=registry,ref={job.repo}:cache",
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(report_file.read_text())
    (target,) = report["targets"]
    assert sorted(p["platform"] for p in target["platforms"]) == PLATFORMS
    assert all(p["duration_s"] is not None for p in target["platforms"])  # each built on its node
    assert target["outcome"] == "built" and target["pushed"] is False
    assert name not in auth_registry.catalog() and auth_registry.tags(name) == []  # no variant, tag or cache
    data = json.loads(metadata.read_text())
    assert data["farm.pushed"] is False
    assert set(data["farm.platforms"]) == set(PLATFORMS)
    assert not [line for line in result.stderr.splitlines() if line.startswith("#")]  # --progress quiet


def test_metadata_file_names_the_registrys_digest(job, auth_registry, docker_config):
    auth_registry.login(docker_config)
    name = job.repo.split("/", 1)[1]
    metadata = job.tmp / "meta.json"

    result = job.farm(
        "build", "--progress", "plain", "--metadata-file", str(metadata), "--verify-run",
        "--set", f"app.tags={job.repo}:one", "--set", f"app.tags={job.repo}:two", "--build-arg", "WORD",
        env={"WORD": "from-the-environment"},
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    index, digest = auth_registry.manifest(name, "one")
    assert auth_registry.manifest(name, "two")[1] == digest
    data = json.loads(metadata.read_text())
    assert data["containerimage.digest"] == digest
    assert data["containerimage.descriptor"]["digest"] == digest
    assert data["containerimage.descriptor"]["mediaType"] == index["mediaType"]
    assert data["image.name"] == f"{job.repo}:one,{job.repo}:two"
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]}
    assert {p: v["digest"] for p, v in data["farm.platforms"].items()} == platforms
    assert {p: v["node"] for p, v in data["farm.platforms"].items()} == {"linux/amd64": "node1", "linux/arm64": "node2"}
    assert data["farm.pushed"] is True
    assert "| from-the-environment" in result.stderr  # the variants ran: the bare --build-arg took $WORD


def test_platform_subset_builds_only_it(job, auth_registry, docker_config):
    report_file = job.tmp / "report.json"
    result = job.farm("build", "--no-push", "--report", str(report_file), "--platform", "aarch64")
    assert result.returncode == 0, result.stderr[-3000:]
    (target,) = json.loads(report_file.read_text())["targets"]
    assert [p["platform"] for p in target["platforms"]] == ["linux/arm64"]

    lacking = job.farm("build", "--no-push", "--platform", "linux/arm/v7")
    assert lacking.returncode == 2
    assert '--platform linux/arm/v7: target "app" does not build it' in lacking.stderr
