"""The pipeline flags through the build's stages (pure): `--set`, `--platform` and `--no-push`
resolved into the targets, the plan and the bake definition `--dry-run` prints."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from buildkit_farm.builds import command, overrides, plan, report, resolve, schedule
from buildkit_farm.errors import UsageError
from buildkit_farm.farmfile.desired import TargetSpec
from buildkit_farm.farmfile.model import TargetConfig
from buildkit_farm.farmfile.targets import target_spec

NODES = (
    schedule.NodeView("node1", "node1", True, ("linux/amd64",), ("linux/amd64",), "v0.13"),
    schedule.NodeView(
        "node2", "node2", True, ("linux/arm64", "linux/arm/v7"), ("linux/arm64", "linux/arm/v7"), "v0.13"
    ),
)
POOLS = {"linux/amd64": ("node1",), "linux/arm64": ("node2",), "linux/arm/v7": ("node2",)}
ALL = ("linux/amd64", "linux/arm64", "linux/arm/v7")


@pytest.fixture
def app(tmp_path: Path) -> TargetSpec:
    (tmp_path / "Dockerfile").write_text("FROM 127.0.0.1:5000/base\n")
    config = TargetConfig(
        name="app",
        context=tmp_path,
        platforms=ALL,
        tags=("127.0.0.1:5000/app:1",),
        args={"A": "file", "B": "file"},
        labels={"team": "file"},
        cache_to=("type=registry,ref=127.0.0.1:5000/app:cache",),
    )
    return target_spec(config, POOLS)


def _desired(*targets: TargetSpec):
    return types.SimpleNamespace(
        targets=targets, file=Path("farm.toml"), builder=types.SimpleNamespace(driver="docker-container", name="farm")
    )


def _options(**fields) -> resolve.BuildOptions:
    for key, parse in (("sets", overrides.parse_sets), ("platforms", overrides.parse_platforms)):
        if key in fields:
            fields[key] = parse(fields[key])
    return resolve.BuildOptions(**fields)


def test_set_overrides_the_file_and_flags_override_set(app):
    options = _options(
        sets=["*.args.A=set", "app.args.B=set", "app.labels.team=set", "app.tags=r/app:set", "app.target=runtime"],
        build_args={"B": "flag"},
    )
    (got,) = resolve.resolve(_desired(app), [], options, env={})
    assert got.build_args == {"A": "set", "B": "flag"}
    assert got.labels == {"team": "set"} and got.tags == ("r/app:set",) and got.repo == "r/app"
    assert got.stage == "runtime"


def test_set_platform_and_platform_subset(app):
    (got,) = resolve.resolve(_desired(app), [], _options(sets=["*.platform=linux/amd64,aarch64"]), env={})
    assert got.platforms == ("linux/amd64", "linux/arm64")
    (got,) = resolve.resolve(_desired(app), [], _options(platforms=["armhf,linux/amd64"]), env={})
    assert got.platforms == ("linux/amd64", "linux/arm/v7")


def test_a_platform_the_target_lacks_exits_2_naming_it(app):
    with pytest.raises(UsageError) as caught:
        resolve.resolve(_desired(app), [], _options(platforms=["linux/s390x"]), env={})
    assert (
        caught.value.exit_code == 2 and '--platform linux/s390x: target "app" does not build it' in caught.value.message
    )


def test_a_set_for_no_selected_target_exits_2(app):
    with pytest.raises(UsageError, match='no selected target matches "web"'):
        resolve.resolve(_desired(app), [], _options(sets=["web.tags=r/web:1"]), env={})


def test_no_push_writes_nothing_anywhere(app):
    options = _options(push=False)
    (got,) = resolve.resolve(_desired(app), [], options, env={})
    assert got.cache_to == ()  # no cache export either
    the_plan = plan.make_plan([got], NODES, options, builder="farm", docker_config=None)
    assert the_plan.push is False
    (bake,) = the_plan.bakes
    (spec,) = bake.definition()["target"].values()
    assert spec["output"] == [
        "type=image,name=127.0.0.1:5000/app:buildkit-farm-staging,push-by-digest=true,name-canonical=true,push=false"
    ]
    shown = "\n".join(plan.render(the_plan))
    assert "not pushed (--no-push)" in shown and "imagetools" not in shown
    assert "nothing is written to any registry" in shown


def test_push_is_the_default(app):
    (got,) = resolve.resolve(_desired(app), [], resolve.BuildOptions(), env={})
    (inv,) = command.invocations(got, schedule.schedule(got.platforms, NODES, target="app"))
    assert inv.spec["output"][0].endswith(",push=true") and got.cache_to


def test_no_push_with_verify_run_is_an_input_error(app):
    with pytest.raises(UsageError, match="--no-push writes nothing"):
        resolve.resolve(_desired(app), [], _options(push=False, verify_run=True), env={})


@pytest.mark.parametrize("mode", ["quiet", "rawjson", "plain"])
def test_progress_modes_pass_through_to_buildx(app, mode):
    resolve.resolve(_desired(app), [], _options(progress=mode), env={})
    argv = command.bake_command(Path("b.json"), builder="farm", metadata_file=Path("m.json"), progress=mode)
    assert argv[-2:] == ["--progress", mode]


def test_a_built_target_moved_no_tag_and_says_so():
    r = report.TargetReport("app", ["r/app:1"], outcome=report.Outcome.BUILT, pushed=False)
    assert report.tags_moved(r.outcome) is False
    assert "app: ok (built, not pushed: --no-push)" in report.render_text([r])
    assert r.to_dict()["outcome"] == "built" and r.to_dict()["pushed"] is False
