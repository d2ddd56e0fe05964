"""A push the registry turns down for a passing reason is pushed again once, on the real lab:
BuildKit pushes through a loopback proxy in front of the lab's registry that refuses the
first manifest pushes (tests/integration/flaky_registry.py), as registries behind a load
balancer do now and then. Nothing else is mocked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildkit_farm.errors import RegistryError
from buildkit_farm.registry.publish import publish_list
from buildkit_farm.registry.read import inspect_image
from integration.flaky_registry import FlakyRegistry, Refusal
from integration.test_build import Farm

pytestmark = pytest.mark.integration

PLATFORMS = ["linux/amd64", "linux/arm64"]


@pytest.fixture
def farm(tmp_path, docker_config, unique_name, lab):
    f = Farm(tmp_path, Path(docker_config), f"r{unique_name}".replace("-", ""), lab)
    yield f
    f.down()


def _target(farm: Farm, tag: str) -> list[dict]:
    folder = farm.tmp / "app"
    folder.mkdir(exist_ok=True)
    (folder / "Dockerfile").write_text(f"FROM {farm.lab.base}\nARG RUN_ID\nRUN echo $RUN_ID > /id\n")
    return [{"name": "app", "context": str(folder), "platforms": PLATFORMS, "tags": [tag]}]


def _build_through(farm: Farm, unique_name: str, refusals: int, run_id: str):
    """`farm up` and `farm build` pushing through a registry that turns down the first
    `refusals` manifest pushes: (the refusal record, the build, the tag as read back)."""
    with FlakyRegistry(farm.lab.registry, Refusal(count=refusals)) as registry:
        tag = f"{registry.address}/push-retry-{unique_name}:1".lower()
        farm.write(_target(farm, tag))
        farm.up()
        result = farm.build("--json", "--build-arg", f"RUN_ID={run_id}")
        return registry.refusal, result, farm.inspect(tag)


def test_a_refused_manifest_push_is_pushed_again_once_and_the_tag_lists_every_platform(farm, unique_name):
    refusal, result, index = _build_through(farm, unique_name, refusals=1, run_id="1")
    assert result.returncode == 0, result.stderr[-4000:]
    assert len(refusal.refused) == 1  # the registry really turned one push down
    assert "400 Bad Request" in result.stderr  # BuildKit's own failure, shown as it came
    assert result.stderr.count("pushing again once") == 1
    report = json.loads(result.stdout)["result"]["targets"][0]
    assert index is not None and index["digest"] == report["digest"]
    assert {v["platform"] for v in index["variants"] if not v["is_attestation"]} == set(PLATFORMS)


def test_a_push_refused_every_time_is_pushed_again_only_once_and_the_tag_stays(farm, unique_name):
    refusal, result, index = _build_through(farm, unique_name, refusals=1000, run_id="2")
    assert result.returncode == 1, result.stderr[-4000:]
    assert result.stderr.count("pushing again once") == 1
    assert len(refusal.refused) >= 2  # the first push and the one more, each turned down
    report = json.loads(result.stdout)["result"]["targets"][0]
    assert report["outcome"] == "failed" and "400 Bad Request" in report["error"]
    assert index is None  # never tagged


def test_a_list_push_refused_once_is_made_again_once(lab, docker_config, unique_name):
    # `imagetools create` (publishing, stitching) copying the lab's base into another repository.
    said: list[str] = []
    with FlakyRegistry(lab.registry, Refusal(count=1, agent="")) as flaky:
        tag = f"{flaky.address}/list-retry-{unique_name}:1"
        digest = publish_list([tag], [lab.base], docker_config=docker_config, echo=said.append)
    assert len(flaky.refusal.refused) == 1 and "/manifests/" in flaky.refusal.refused[0]
    assert len(said) == 1 and "pushing it again once" in said[0] and "400 Bad Request" in said[0]
    index = inspect_image(tag.replace(flaky.address, lab.registry), docker_config=docker_config)
    assert index.digest == digest
    assert index.platforms == inspect_image(lab.base, docker_config=docker_config).platforms


def test_a_list_push_refused_every_time_is_a_registry_error_after_one_retry(lab, registry, docker_config, unique_name):
    said: list[str] = []
    with FlakyRegistry(lab.registry, Refusal(count=1000, agent="")) as flaky:
        tag = f"{flaky.address}/list-retry-{unique_name}:1"
        with pytest.raises(RegistryError) as err:
            publish_list([tag], [lab.base], docker_config=docker_config, echo=said.append)
    assert len(said) == 1
    assert "400 Bad Request" in str(err.value) and "plain http" not in str(err.value)
    assert registry.tags(f"list-retry-{unique_name}") == []
