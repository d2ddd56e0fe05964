"""`farm lint --registry` against the lab's real registries: is each FROM a manifest list
with every platform being built? Images are pushed over the registry API (real blobs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from registry_images import push_image

ROOT = Path(__file__).resolve().parents[2]


def _lint(*args: str, docker_config: Path, env: dict[str, str] | None = None) -> tuple[int, dict]:
    code = "from buildkit_farm.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "lint", "--registry", "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "DOCKER_CONFIG": str(docker_config), **(env or {})},
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)["result"]


def _rules(report: dict) -> list[tuple[str, int]]:
    return [(f["rule"], f["line"]) for f in report["findings"]]


def _dockerfile(folder: Path, name: str, image: str) -> str:
    path = folder / name
    path.write_text(f"# lint --registry\nFROM {image}\nCMD echo hi\n")
    return str(path)


def test_single_platform_image_is_refused_in_a_multiarch_dockerfile(
    lab, registry, docker_config, unique_name, tmp_path
):
    repo = unique_name("lint-single")
    push_image(registry.address, repo, "1", os="linux", arch="amd64")
    image = f"{registry.repo(repo)}:1"

    code, report = _lint(_dockerfile(tmp_path, "Dockerfile", image), docker_config=docker_config)
    assert (code, _rules(report)) == (1, [("from-not-multiarch", 2)])

    # The same image is right for the linux/amd64 Dockerfile, and wrong for linux/arm64.
    code, report = _lint(_dockerfile(tmp_path, "Dockerfile.linux-amd64", image), docker_config=docker_config)
    assert (code, _rules(report)) == (0, [])
    code, report = _lint(_dockerfile(tmp_path, "Dockerfile.linux-arm64", image), docker_config=docker_config)
    assert (code, _rules(report)) == (1, [("from-missing-platform", 2)])


def test_lab_base_list_covers_the_lab_platforms_only(lab, docker_config, tmp_path):
    path = _dockerfile(tmp_path, "Dockerfile", lab.base)
    code, report = _lint("--platform", "linux/amd64,linux/arm64,linux/arm/v7", path, docker_config=docker_config)
    assert (code, _rules(report)) == (0, [])
    code, report = _lint("--platform", "linux/amd64,linux/s390x", path, docker_config=docker_config)
    assert (code, _rules(report)) == (1, [("from-missing-platform", 2)])
    assert "linux/s390x" in report["findings"][0]["message"]


def test_tls_registry_with_the_lab_ca(lab, registry, docker_config, unique_name, tmp_path):
    repo = unique_name("lint-tls")
    push_image(registry.tls_address, repo, "1", os="linux", arch="arm64", ca=lab.ca)
    path = _dockerfile(tmp_path, "Dockerfile", f"{registry.repo(repo, tls=True)}:1")
    code, report = _lint(path, docker_config=docker_config, env={"FARM_REGISTRY_CA": str(lab.ca)})
    assert (code, _rules(report)) == (1, [("from-not-multiarch", 2)])
    assert "linux/arm64" in report["findings"][0]["message"]


def test_missing_image_is_a_warning_not_an_error(registry, docker_config, unique_name, tmp_path):
    path = _dockerfile(tmp_path, "Dockerfile", f"{registry.repo(unique_name('lint-gone'))}:1")
    code, report = _lint(path, docker_config=docker_config)
    assert (code, _rules(report)) == (0, [("from-unreadable", 2)])
