"""The book's build-farm exercise (chapter 16.4) with the plain docker CLI on the lab.

This is the reference behaviour `farm` must reproduce with one file and two commands:
two contexts (node2 over ssh), one builder with a node per context, one two-platform build
pushed as one tag, each variant runs, and the arm64 variant was really built on node2.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

DOCKERFILE = """\
FROM {base}
RUN uname -m > /built-arch && cat /proc/self/cgroup > /built-cgroup
CMD ["sh", "-c", "echo running-on=$(uname -m); echo built-on=$(cat /built-arch)"]
"""


class Docker:
    """The docker CLI with a private config: nothing leaks into the user's contexts/builders."""

    def __init__(self, config: Path) -> None:
        self.env = {**os.environ, "DOCKER_CONFIG": str(config)}
        for key in ("DOCKER_HOST", "DOCKER_CONTEXT", "BUILDX_BUILDER"):
            self.env.pop(key, None)

    def __call__(self, *args: str, timeout: int = 600) -> str:
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout


@pytest.fixture
def exercise(tmp_path, docker_config, unique_name, lab):
    docker = Docker(docker_config)
    pulled: list[str] = []
    yield docker, unique_name, pulled
    for ref in pulled:
        subprocess.run(["docker", "-H", lab.node1, "rmi", "-f", ref], capture_output=True, timeout=60)


def test_book_exercise_two_nodes_two_platforms_one_tag(exercise, lab, registry, tmp_path):
    docker, name, pulled = exercise
    ctx1, ctx2 = f"{name}-node1", f"{name}-node2"
    # buildx names each BuildKit container buildx_buildkit_<node> on its engine: unique node names.
    n1, n2 = f"{name}-n1", f"{name}-n2"

    docker("context", "create", ctx1, "--docker", f"host={lab.node1}")
    docker("context", "create", ctx2, "--docker", f"host={lab.node2}")
    contexts = docker("context", "ls", "--format", "{{.Name}} {{.DockerEndpoint}}")
    assert f"{ctx2} {lab.node2}" in contexts

    docker(
        "buildx",
        "create",
        "--name",
        name,
        "--node",
        n1,
        "--platform",
        "linux/amd64",
        "--driver-opt",
        "network=host",
        ctx1,
    )
    docker(
        "buildx",
        "create",
        "--append",
        "--name",
        name,
        "--node",
        n2,
        "--platform",
        "linux/arm64",
        "--driver-opt",
        "network=host",
        ctx2,
    )
    listing = docker("buildx", "ls")
    assert n1 in listing and n2 in listing

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(DOCKERFILE.format(base=lab.base))
    repo = registry.repo(f"book-exercise-{name}")
    tag = f"{repo}:1"
    docker(
        "buildx",
        "build",
        "--builder",
        name,
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        tag,
        "--push",
        str(tmp_path / "app"),
    )

    # One tag, no per-variant tags; the list names both platforms.
    assert registry.tags(repo.split("/", 1)[1]) == ["1"]
    index = json.loads(docker("buildx", "imagetools", "inspect", "--raw", tag))
    variants = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in index["manifests"]
        if m["platform"]["os"] != "unknown"  # attestation manifests
    }
    assert set(variants) == {"linux/amd64", "linux/arm64"}

    # Each variant runs and prints its own architecture (arm64 under QEMU on this host).
    expected = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
    cgroups = {}
    for platform, digest in variants.items():
        ref = f"{repo}@{digest}"
        pulled.append(ref)
        out = docker("--context", ctx1, "run", "--rm", "--platform", platform, ref)
        assert f"running-on={expected[platform]}" in out and f"built-on={expected[platform]}" in out, out
        cgroups[platform] = docker(
            "--context", ctx1, "run", "--rm", "--platform", platform, ref, "cat", "/built-cgroup"
        )

    # Proof of distribution: each RUN step ran inside its own node's BuildKit container.
    id1 = docker("--context", ctx1, "container", "inspect", "--format", "{{.Id}}", f"buildx_buildkit_{n1}").strip()
    id2 = docker("--context", ctx2, "container", "inspect", "--format", "{{.Id}}", f"buildx_buildkit_{n2}").strip()
    assert id1 and id2 and id1 != id2
    assert id2 in cgroups["linux/arm64"] and id1 not in cgroups["linux/arm64"], cgroups["linux/arm64"]
    assert id1 in cgroups["linux/amd64"] and id2 not in cgroups["linux/amd64"], cgroups["linux/amd64"]

    docker("buildx", "rm", name)
    for ctx, node in ((ctx1, n1), (ctx2, n2)):
        left = docker(
            "--context", ctx, "ps", "-a", "--filter", f"name=buildx_buildkit_{node}", "--format", "{{.Names}}"
        )
        assert left.strip() == ""
