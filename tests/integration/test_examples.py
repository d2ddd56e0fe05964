"""The examples on the real lab: each one's farm file, linted, built with --verify-run and
inspected, as `make example-NAME` does, under a unique builder, private Docker config
and unique image names so it collides with nobody. Nothing is mocked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LAB_PLATFORMS = {"linux/amd64", "linux/arm64", "linux/arm/v7"}


class ExampleFarm:
    """An example's farm file rewritten for a test: unique builder and tags, absolute paths."""

    def __init__(self, tmp: Path, docker_config: Path, builder: str, repo_prefix: str, env: dict[str, str]) -> None:
        self.tmp, self.builder, self.repo_prefix = tmp, builder, repo_prefix
        self.env = {**os.environ, **env, "DOCKER_CONFIG": str(docker_config), "NO_COLOR": "1"}
        self.files: list[Path] = []

    def file_for(self, example: str) -> tuple[Path, str]:
        folder = EXAMPLES / example
        text = (folder / "farm.toml").read_text()
        repo = f"{self.repo_prefix}-{example}"
        text = re.sub(r'(?m)^name = "lab"$', f'name = "{self.builder}"', text)
        text = re.sub(r"(?m)^tags = \[.*\]$", f'tags = ["{repo}:latest"]', text)
        # Paths are relative to the example's folder; the copy lives in tmp.
        text = re.sub(
            r'(?m)^(buildkitd_config|context) = "([^"]+)"',
            lambda m: f'{m.group(1)} = "{(folder / m.group(2)).resolve()}"',
            text,
        )
        text = re.sub(r'"(Dockerfile\.[\w.-]+)"', lambda m: f'"{folder / m.group(1)}"', text)
        path = self.tmp / f"{example}.toml"
        path.write_text(text)
        self.files.append(path)
        return path, repo

    def farm(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        code = "from buildkit_farm.cli import main; main()"
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            env=self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def build(self, example: str) -> tuple[dict, str]:
        path, repo = self.file_for(example)
        lint = self.farm("lint", "-f", str(path))
        assert lint.returncode == 0, lint.stdout + lint.stderr
        result = self.farm("build", "-f", str(path), "--up", "--verify-run", "--progress", "plain", "--json")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        (report,) = json.loads(result.stdout)["result"]["targets"]
        return report, repo

    def variants(self, ref: str) -> set[str]:
        result = self.farm("inspect", ref, "--json")
        assert result.returncode == 0, result.stderr
        return {v["platform"] for v in json.loads(result.stdout)["result"]["variants"] if not v.get("is_attestation")}

    def down(self) -> None:
        if self.files:
            self.farm("down", "-f", str(self.files[0]))


@pytest.fixture
def example_farm(tmp_path, docker_config, unique_name, lab, registry):
    farm = ExampleFarm(
        tmp_path,
        Path(docker_config),
        f"ex{unique_name}",
        registry.repo(f"example-{unique_name}"),
        dict(getattr(lab, "env", None) or {}),
    )
    yield farm
    farm.down()


def _verified(report: dict) -> dict[str, tuple[int, str]]:
    return {v["platform"]: (v["exit_code"], v["output"]) for v in report["verify"]}


def test_lab_fix_broken_fails_lint_and_fixed_builds_for_three_platforms(example_farm):
    broken = example_farm.farm("lint", str(EXAMPLES / "lab-fix" / "Dockerfile.broken"))
    assert broken.returncode == 1
    assert "arch-specific-from" in broken.stdout and "windows-command-on-linux" in broken.stdout

    report, repo = example_farm.build("lab-fix")
    assert {p["platform"] for p in report["platforms"]} == LAB_PLATFORMS
    assert {p: code for p, (code, _) in _verified(report).items()} == dict.fromkeys(LAB_PLATFORMS, 0)
    assert example_farm.variants(f"{repo}:latest") == LAB_PLATFORMS


def test_whoami_artifact_matches_each_platform(example_farm):
    report, repo = example_farm.build("whoami")
    machines = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm/v7": "armv7l"}
    for platform, (code, output) in _verified(report).items():
        # The app exits 1 when it runs on another CPU than it was "compiled" for.
        assert code == 0
        assert f"built for {platform} on linux/amd64, running on {machines[platform]}" in output
    assert example_farm.variants(f"{repo}:latest") == LAB_PLATFORMS


def test_folder_list_per_platform_files_stitched_with_variant_tags(example_farm, registry):
    report, repo = example_farm.build("folder-list")
    nodes = {p["platform"]: p["node"] for p in report["platforms"]}
    assert nodes == {"linux/amd64": "node1", "linux/arm64": "node2", "linux/arm/v7": "node2"}
    for platform, (code, output) in _verified(report).items():
        assert code == 0 and f"Built as: {platform}" in output
    assert example_farm.variants(f"{repo}:latest") == LAB_PLATFORMS
    name = repo.split("/", 1)[1]
    assert {"linux-amd64", "linux-arm64", "linux-arm-v7"} <= set(registry.tags(name))
