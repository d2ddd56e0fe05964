"""apply_plan when a step fails or is interrupted: a replaced builder is put back, the error
says which steps were applied, and Ctrl-C becomes `Interrupted` (exit 130).

The docker CLI is replaced at the one door (conftest's `fake_docker`) by rules that act on
the instance file as buildx does (`rm` deletes it, `create` writes it) or fail like it.
"""

from __future__ import annotations

import json

import pytest
from farms import ONE_NODE

from buildkit_farm.docker import DockerPaths
from buildkit_farm.errors import ApplyError, Interrupted
from buildkit_farm.farmfile.load import load_config_text
from buildkit_farm.reconcile import apply
from buildkit_farm.reconcile.steps import Action, Plan, Step

FARM = ONE_NODE
OLD_INSTANCE = json.dumps({"Name": "farm", "Driver": "docker-container", "Nodes": [{"Name": "farm-node1"}]}).encode()


@pytest.fixture()
def paths(tmp_path) -> DockerPaths:
    p = DockerPaths.resolve(tmp_path / "docker")
    inst = p.instance_file("farm")
    inst.parent.mkdir(parents=True)
    inst.write_bytes(OLD_INSTANCE)
    return p


def _replace_plan() -> Plan:
    settings = load_config_text(FARM).node_settings()[0]
    return Plan(
        builder="farm",
        driver="docker-container",
        steps=(
            Step("builder", "farm", Action.REPLACE, "the driver changed"),
            Step("node", "node1", Action.CREATE, "joins", settings=settings, buildx_node="farm-node1"),
        ),
    )


def _fake_rm(paths, args):
    paths.instance_file(args[-1]).unlink()  # what `buildx rm` does to the file


def _failing_create(fake_docker):
    fake_docker.on("buildx", "create", returncode=1, stderr="ERROR: boom: no such engine")


def test_a_failed_create_after_the_replace_puts_the_old_builder_back(paths, fake_docker):
    fake_docker.on("buildx", "rm", effect=_fake_rm)
    _failing_create(fake_docker)
    with pytest.raises(ApplyError) as caught:
        apply.apply_plan(_replace_plan(), paths)
    assert paths.instance_file("farm").read_bytes() == OLD_INSTANCE
    err = caught.value
    assert "node node1" in err.message and "boom" in err.message
    hint = err.hint or ""
    assert "put back as it was before the replace" in hint
    assert "applied before: -/+ builder farm" in hint
    assert "instance file was restored" not in hint  # it was not, by the failing step itself


def test_the_instance_backup_is_kept_and_named_when_interrupted(paths, fake_docker):
    def interrupted_create(paths, args):
        raise KeyboardInterrupt

    fake_docker.on("buildx", "rm", effect=_fake_rm)
    fake_docker.on("buildx", "create", effect=interrupted_create)
    with pytest.raises(Interrupted) as caught:
        apply.apply_plan(_replace_plan(), paths)
    err = caught.value
    assert err.exit_code == 130
    assert "interrupted during + node node1" in err.message
    assert "applied before: -/+ builder farm" in err.message
    backup = paths.farm_dir / "farm.instance.bak"
    assert backup.read_bytes() == OLD_INSTANCE and str(backup) in (err.hint or "")
    assert paths.instance_file("farm").read_bytes() == OLD_INSTANCE


def test_a_successful_replace_is_not_undone(paths, fake_docker):
    new = b'{"Name": "farm", "Driver": "docker-container", "Nodes": []}'

    def create(paths, args):
        paths.instance_file(args[args.index("--name") + 1]).write_bytes(new)

    fake_docker.on("buildx", "rm", effect=_fake_rm)
    fake_docker.on("buildx", "create", effect=create)
    apply.apply_plan(_replace_plan(), paths)
    assert paths.instance_file("farm").read_bytes() == new


def test_a_failed_first_create_leaves_no_half_made_builder(tmp_path, fake_docker):
    paths = DockerPaths.resolve(tmp_path / "docker")
    plan = Plan("farm", "docker-container", (_replace_plan().steps[1],))
    _failing_create(fake_docker)
    with pytest.raises(ApplyError) as caught:
        apply.apply_plan(plan, paths)
    assert not paths.instance_file("farm").exists()
    assert "no half-made builder was left" in (caught.value.hint or "")
