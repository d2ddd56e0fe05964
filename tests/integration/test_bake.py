"""Targets from bake files, on the real lab: buildx resolves them (`bake --print`), farm
builds them across the farm with every farm rule, and bad bake files exit 2 naming the file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomli_w

from integration.test_build import FARM, Farm, _repo  # the lab farm helper of the single-target tests

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MONOREPO = ROOT / "examples" / "monorepo"

BAKE = """
variable "REPO" {{ default = "{repo}" }}
variable "VERSION" {{ default = "dev" }}
group "default" {{ targets = ["app", "tools"] }}
target "_common" {{
  platforms = ["linux/amd64", "linux/arm64"]
  args = {{ BASE = "{base}" }}
}}
target "app" {{
  inherits = ["_common"]
  context = "app"
  tags = ["${{REPO}}-app:${{VERSION}}"]
}}
target "tools" {{
  name = "tool-${{t}}"
  matrix = {{ t = ["a", "b"] }}
  inherits = ["_common"]
  context = "app"
  args = {{ WHAT = t }}
  tags = ["${{REPO}}-tool-${{t}}:${{VERSION}}"]
}}
"""
DOCKERFILE = "ARG BASE\nFROM ${BASE}\nARG WHAT=app\nRUN echo $WHAT > /what\nCMD cat /what\n"


@pytest.fixture
def farm(tmp_path, docker_config, unique_name, lab):
    f = Farm(tmp_path, Path(docker_config), f"k{unique_name}".replace("-", ""), lab)
    yield f
    f.down()


def _write(farm: Farm, bake: dict) -> Path:
    data = farm.lab.farm_data(farm.builder)
    data.pop("target", None)  # the lab file's own demo target: this farm file builds only the bake targets
    data["bake"] = bake
    farm.file.write_text(tomli_w.dumps(data))
    return farm.file


def _bake_project(farm: Farm, repo: str) -> None:
    (farm.tmp / "app").mkdir(exist_ok=True)
    (farm.tmp / "app" / "Dockerfile").write_text(DOCKERFILE)
    (farm.tmp / "docker-bake.hcl").write_text(BAKE.format(repo=repo, base=farm.lab.base))


def test_a_bake_file_with_a_variable_inherits_and_a_matrix_builds_across_the_farm(farm, unique_name):
    repo = _repo(farm.lab, unique_name)
    _bake_project(farm, repo)
    _write(farm, {"files": ["docker-bake.hcl"], "target": {"tool-b": {"variant_tags": True}}})

    validated = farm.run("validate", "-f", str(farm.file))
    assert validated.returncode == 0, validated.stderr
    for name in ("app", "tool-a", "tool-b"):
        assert f'target {name} <- docker-bake.hcl target "{name}"' in validated.stdout
    assert "linux/arm64 on node2" in validated.stdout

    farm.up()
    result = farm.build("--json", "--var", "VERSION=1.5", "--verify-run")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)["result"]
    assert sorted(t["target"] for t in report["targets"]) == ["app", "tool-a", "tool-b"]
    for target in report["targets"]:
        (tag,) = target["tags"]
        assert tag.endswith(":1.5")  # the bake variable, from --var
        index = farm.inspect(tag)
        assert index is not None and index["digest"] == target["digest"]
        assert {v["platform"] for v in index["variants"] if not v["is_attestation"]} == {"linux/amd64", "linux/arm64"}
        assert {p["platform"]: p["node"] for p in target["platforms"]} == {
            "linux/amd64": "node1",
            "linux/arm64": "node2",
        }
        runs = {v["platform"]: v["output"].strip() for v in target["verify"]}
        want = "app" if target["target"] == "app" else target["target"].removeprefix("tool-")  # the matrix arg
        assert runs == {"linux/amd64": want, "linux/arm64": want}
    assert farm.inspect(f"{repo}-tool-b:linux-arm64") is not None  # [bake.target.tool-b] variant_tags
    assert farm.inspect(f"{repo}-tool-a:linux-arm64") is None


def _refused(farm: Farm, *needles: str) -> None:
    for args in (("validate",), ("build", "--dry-run")):
        result = farm.run(*args, "-f", str(farm.file))
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        for needle in needles:
            assert needle in result.stderr, (args, needle, result.stderr)


def test_bad_bake_files_exit_2_naming_the_file(farm, unique_name):
    repo = _repo(farm.lab, unique_name)
    _bake_project(farm, repo)

    _write(farm, {"files": ["missing.hcl"]})
    _refused(farm, "missing.hcl does not exist", "bake.files[0]")

    (farm.tmp / "broken.hcl").write_text('target "x" {\n  context = "app"\n')
    _write(farm, {"files": ["broken.hcl"]})
    _refused(farm, "broken.hcl", "Unclosed configuration block")

    _write(farm, {"files": ["docker-bake.hcl"], "targets": ["nope"]})
    _refused(farm, "docker-bake.hcl", "bake.targets", "failed to find target nope")

    _write(farm, {"files": ["docker-bake.hcl"], "target": {"ghost": {"variant_tags": True}}})
    _refused(farm, "docker-bake.hcl", 'bake.target."ghost"', "is not a target of the bake files")


def test_a_bake_platform_no_node_is_pinned_to_is_refused_unless_allowed_by_name(farm, unique_name):
    repo = _repo(farm.lab, unique_name)
    _bake_project(farm, repo)
    text = (farm.tmp / "docker-bake.hcl").read_text().replace('"linux/arm64"]', '"linux/arm64", "linux/s390x"]')
    (farm.tmp / "docker-bake.hcl").write_text(text)
    _write(farm, {"files": ["docker-bake.hcl"], "targets": ["app"]})
    _refused(farm, "docker-bake.hcl", 'bake target "app".platforms[2]', "linux/s390x is pinned to no node")

    _write(
        farm,
        {"files": ["docker-bake.hcl"], "targets": ["app"], "target": {"app": {"allow_emulation": ["linux/s390x"]}}},
    )
    result = farm.run("validate", "-f", str(farm.file))
    assert result.returncode == 0, result.stderr
    assert "linux/s390x under QEMU" in result.stdout


def test_the_monorepo_example_reuses_its_bake_file(farm, unique_name):
    """examples/monorepo as a user runs it (its farm file validates as is), then built on this
    test's own builder, the bake file copied unchanged."""
    validated = subprocess.run(
        [FARM, "validate", "-f", str(MONOREPO / "farm.toml")], capture_output=True, text=True, env=farm.env
    )
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.count(" <- docker-bake.hcl target ") == 4

    for item in ("docker-bake.hcl", "services"):
        src = MONOREPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, farm.tmp / item)
    repo = _repo(farm.lab, unique_name)
    _write(farm, {"files": ["docker-bake.hcl"], "target": {"api": {"variant_tags": True}}})
    farm.up()
    result = farm.build("--json", "--var", f"REGISTRY={repo}", "--var", "VERSION=1.0")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)["result"]
    assert sorted(t["target"] for t in report["targets"]) == ["api", "tool-lint", "tool-migrate", "worker"]
    assert all(t["outcome"] == "published" and t["tags"][0].startswith(repo) for t in report["targets"])
    assert farm.inspect(f"{repo}/api:linux-arm64") is not None


# A bake file as users of buildx >= 0.20 write it: a registry cache (mode=max), an env and a
# file secret both required by the RUN, a provenance attestation, and a second target so the
# build runs as one generated bake (which buildx >= 0.20 only reads with --allow fs.read=...).
CARRIED_BAKE = """
group "default" {{ targets = ["app", "side"] }}
target "app" {{
  context = "app"
  platforms = ["linux/amd64", "linux/arm64"]
  args = {{ BASE = "{base}" }}
  tags = ["{repo}-app:1"]
  cache-from = ["type=registry,ref={repo}-cache:app"]
  cache-to = ["type=registry,ref={repo}-cache:app,mode=max"]
  secret = ["id=npm,env=NPM_TOKEN", "id=key,src=key.txt"]
  attest = ["type=provenance"]
  output = ["type=registry"]
}}
target "side" {{
  context = "app"
  platforms = ["linux/amd64", "linux/arm64"]
  args = {{ BASE = "{base}" }}
  tags = ["{repo}-side:1"]
}}
"""
SECRET_DOCKERFILE = (
    "ARG BASE\nFROM ${BASE}\n"
    "RUN --mount=type=secret,id=npm,required=true --mount=type=secret,id=key,required=true "
    "test -s /run/secrets/npm && test -s /run/secrets/key && echo ok > /ok\n"
    'CMD ["cat", "/ok"]\n'
)


def _other_buildx_config(farm: Farm, buildx) -> Path:
    """A second Docker config running the buildx this session does not test (the lab has both)."""
    from conftest import BUILDX_CHOICES, Buildx, _facts

    other = next(v for v in BUILDX_CHOICES if v != buildx.version)
    key = BUILDX_CHOICES[other]
    folder = Path(_facts()[key]) if key else None
    if folder is not None and not (folder / "docker-buildx").is_file():
        pytest.fail(f"no buildx {other} in {folder} (run `lab/lab.sh install`)")
    config = farm.tmp / f"docker-config-{other}"
    config.mkdir()
    Buildx(other, folder).write_config(config)
    return config


def test_cache_secrets_and_provenance_of_a_bake_file_reach_the_build_the_same_on_both_buildx(
    farm, unique_name, registry, buildx
):
    repo = _repo(farm.lab, unique_name)
    (farm.tmp / "app").mkdir()
    (farm.tmp / "app" / "Dockerfile").write_text(SECRET_DOCKERFILE)
    (farm.tmp / "key.txt").write_text("file-secret\n")
    (farm.tmp / "docker-bake.hcl").write_text(CARRIED_BAKE.format(repo=repo, base=farm.lab.base))
    _write(farm, {"files": ["docker-bake.hcl"]})
    env = {"NPM_TOKEN": "env-secret"}

    # the same docker commands from both buildx versions' `bake --print`
    other = _other_buildx_config(farm, buildx)
    shown = [
        farm.run("build", "-f", str(farm.file), "--dry-run", env={**env, "DOCKER_CONFIG": str(config)})
        for config in (farm.docker_config, other)
    ]
    for result in shown:
        assert result.returncode == 0, result.stderr[-3000:]
    old, new = (re.sub(r"/farm-build-[^/]+/", "/TMP/", r.stdout) for r in shown)  # each run's own metadata folder
    assert old == new
    # the run plan prints the bake definition that runs: cache, secrets (ids only), provenance
    assert '"cache-to": [' in old and "type=registry," in old and "mode=max" in old
    assert '"type=provenance"' in old and '"id=npm,' in old and '"id=key,' in old

    farm.up()
    result = farm.build("--json", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "at once (1 buildx bake(s))" in result.stderr  # the generated definition: --allow on buildx >= 0.20
    report = json.loads(result.stdout)["result"]
    assert sorted(t["target"] for t in report["targets"]) == ["app", "side"]
    index = farm.inspect(f"{repo}-app:1")
    assert index is not None
    images = [v for v in index["variants"] if not v["is_attestation"]]
    assert {v["platform"] for v in images} == {"linux/amd64", "linux/arm64"}
    attested = {v["attests"] for v in index["variants"] if v["is_attestation"]}
    assert attested == {v["digest"] for v in images}  # provenance on each platform
    cache_repo = f"{repo}-cache".split("/", 1)[1]
    assert "app" in registry.tags(cache_repo)  # the registry cache was written
