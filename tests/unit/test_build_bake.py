"""The run as one bake (pure parts): the generated definition carries each build's exact
settings, bake target names are safe, and bake's interleaved log is routed per target."""

from __future__ import annotations

import time
from pathlib import Path

from buildkit_farm.builds import command, run
from buildkit_farm.builds.progress import ProgressTracker
from buildkit_farm.builds.resolve import BuildOptions, resolve_target
from buildkit_farm.builds.schedule import NodeView, schedule
from buildkit_farm.farmfile.model import SecretConfig, TargetConfig
from buildkit_farm.farmfile.targets import target_spec

NODES = (
    NodeView("node1", "node1", True, ("linux/amd64",)),
    NodeView("node2", "node2", True, ("linux/arm64",)),
)


def _plan(tmp_path: Path, name: str, **fields):
    (tmp_path / name).mkdir()
    (tmp_path / name / "Dockerfile").write_text("FROM 127.0.0.1:5000/base\n")
    values = dict(
        name=name, context=tmp_path / name, platforms=("linux/amd64", "linux/arm64"), tags=(f"127.0.0.1:5000/{name}:1",)
    )
    values.update(fields)
    prepared = resolve_target(target_spec(TargetConfig(**values), {}), BuildOptions(no_cache=True), env={"TOKEN": "x"})
    assignments = schedule(prepared.platforms, NODES, target=name)
    return [(name, inv) for inv in command.invocations(prepared, assignments)]


def test_the_bake_definition_has_each_build_with_its_push_by_digest_output(tmp_path):
    plan = _plan(tmp_path, "api", args={"A": "1"}, target="prod", secrets=(SecretConfig(id="tok", env="TOKEN"),))
    plan += _plan(tmp_path, "web.v2", cache_from=("r/cache:1",))
    definition = command.bake_definition(plan)
    assert definition["group"] == {"default": {"targets": ["api", "web_v2"]}}  # `.` is not a bake name
    api = definition["target"]["api"]
    (_, inv) = plan[0]
    assert (
        api["context"] == inv.spec["context"] == str(tmp_path / "api") and api["dockerfile"] == inv.spec["dockerfile"]
    )
    assert api["platforms"] == ["linux/amd64", "linux/arm64"] and api["args"] == {"A": "1"} and api["target"] == "prod"
    assert api["output"] == [
        "type=image,name=127.0.0.1:5000/api:buildkit-farm-staging,push-by-digest=true,name-canonical=true,push=true"
    ]
    assert api["secret"] == ["id=tok,env=TOKEN"] and api["no-cache"] is True
    assert "type=provenance,disabled=true" in api["attest"]
    assert definition["target"]["web_v2"]["cache-from"] == ["type=registry,ref=r/cache:1"]


def test_bake_names_tell_apart_the_builds_of_one_target():
    inv = lambda label: command.Invocation((label,), Path("D"), {}, label)  # noqa: E731
    names = command.bake_names([("app", inv("linux/amd64")), ("app", inv("linux/arm64")), ("db", inv("x"))])
    assert names == ["app_linux_amd64", "app_linux_arm64", "db"]


def test_bake_command_comes_from_the_docker_door(tmp_path):
    argv = command.bake_command(
        Path("run.json"), builder="farm", metadata_file=Path("m.json"), progress="plain", docker_config=str(tmp_path)
    )
    assert argv == [
        "docker",
        "--config",
        str(tmp_path),
        "buildx",
        "bake",
        "--file",
        "run.json",
        "--builder",
        "farm",
    ] + [
        "--metadata-file",
        "m.json",
        "--progress",
        "plain",
    ]


def test_bake_log_lines_are_routed_to_their_target_without_the_bake_name():
    items = {
        name: run.BakeItem(
            name, name, None, (), ProgressTracker(("linux/amd64", "linux/arm64"), start=time.monotonic())
        )  # type: ignore[arg-type]
        for name in ("api", "db")
    }
    vertices: dict = {}
    item, line = run._route("#12 [api linux/arm64 2/3] RUN make", items, vertices, only=None)
    assert item is items["api"] and line == "#12 [linux/arm64 2/3] RUN make"
    item, line = run._route("#12 0.52 compiling", items, vertices, only=None)  # a later line of that step
    assert item is items["api"] and line == "#12 0.52 compiling"
    item, line = run._route("#3 [db internal] load build definition from Dockerfile", items, vertices, only=None)
    assert item is items["db"] and line == "#3 [internal] load build definition from Dockerfile"
    assert run._route("#1 [internal] load local bake definitions", items, vertices, only=None)[0] is None


def test_a_step_cancelled_by_another_failure_is_not_a_failure():
    failing = ProgressTracker(("linux/arm64",), start=0.0)
    cancelled = ProgressTracker(("linux/amd64",), start=0.0)
    for line in ("#9 [2/2] RUN exit 3", "#9 ERROR: process did not complete successfully: exit code: 3"):
        failing.feed(line, 1.0)
    for line in ("#8 [2/2] RUN sleep 6", "#8 ERROR: context canceled", "#8 CANCELED"):
        cancelled.feed(line, 1.0)
    assert failing.failed_vertex == "9" and cancelled.failed_vertex is None


def test_the_run_plan_puts_every_pinned_build_in_one_bake_and_each_emulated_build_in_its_own(tmp_path):
    from buildkit_farm.builds import plan

    def resolved(name: str, **fields):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM 127.0.0.1:5000/base\n")
        values = dict(name=name, context=tmp_path / name, platforms=("linux/amd64",), tags=(f"r/{name}:1",))
        values.update(fields)
        return resolve_target(target_spec(TargetConfig(**values), {}), BuildOptions(), env={})

    targets = [
        resolved("api", platforms=("linux/amd64", "linux/arm64")),
        resolved("arm", platforms=("linux/amd64", "linux/arm/v7"), allow_emulation=("linux/arm/v7",)),
        resolved("db"),
    ]
    the_plan = plan.make_plan(targets, NODES, BuildOptions(verify_run=True), builder="farm", docker_config=None)
    shared, *alone = the_plan.bakes
    assert shared.targets == ("api", "db") and [b.targets for b in alone] == [("arm",), ("arm",)]
    assert [list(b.definition()["target"]) for b in alone] == [["arm_linux_amd64"], ["arm_linux_arm_v7"]]
    assert [a.emulated for a in the_plan.targets[1].assignments] == [False, True]
    assert [(j.platform, j.node, j.context) for j in the_plan.targets[0].verify] == [
        ("linux/amd64", "node1", "node1"),
        ("linux/arm64", "node2", "node2"),
    ]
    # after a shared bake stopped at another's failure: each build of the innocent in a bake of its own
    assert [list(b.definition()["target"]) for b in the_plan.alone(["db"])] == [["db"]]


def _two_target_plan(tmp_path: Path):
    from buildkit_farm.builds import plan

    targets = []
    for name in ("api", "db"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM 127.0.0.1:5000/base\n")
        config = TargetConfig(name=name, context=tmp_path / name, platforms=("linux/amd64",), tags=(f"r/{name}:1",))
        targets.append(resolve_target(target_spec(config, {}), BuildOptions(), env={}))
    return plan.make_plan(targets, NODES, BuildOptions(), builder="farm", docker_config=None)


_DIGEST_INVALID = (
    'target "db": build failed for linux/amd64 on node "node1" (buildx exit 1):\n'
    '  | #21 ERROR: failed to push r/db:1: failed commit on ref "manifest-sha256:6bcc": unexpected status from PUT '
    "request to http://r/v2/db/manifests/sha256:6bcc: 400 Bad Request: provided digest did not match uploaded content"
)


def test_a_push_failing_for_a_passing_reason_is_pushed_again_once_alone(tmp_path, monkeypatch):
    from buildkit_farm.errors import BuildError

    the_plan = _two_target_plan(tmp_path)
    ran: list[tuple[str, ...]] = []

    def bake(b, plan, **_):
        ran.append(b.targets)
        if b.targets == ("api", "db"):  # the shared bake: db's push hit the registry's trouble
            return {"api": [run.Pushed(("linux/amd64",), "sha256:a", {})], "db": BuildError(_DIGEST_INVALID)}
        return {"db": [run.Pushed(("linux/amd64",), "sha256:d", {})]}

    monkeypatch.setattr(run, "run_bake", bake)
    monkeypatch.setattr(run, "PUSH_SETTLE", 0.0)
    lines: list[str] = []
    outcomes = run.run_builds(the_plan, echo=lines.append)
    assert ran == [("api", "db"), ("db",)]  # api is not built twice
    assert outcomes["db"] == [run.Pushed(("linux/amd64",), "sha256:d", {})]
    assert outcomes["api"] == [run.Pushed(("linux/amd64",), "sha256:a", {})]
    assert any("the push of db failed for a reason that passes" in l for l in lines)


def test_a_push_failing_again_or_for_good_is_not_retried_forever(tmp_path, monkeypatch):
    from buildkit_farm.errors import BuildError

    the_plan = _two_target_plan(tmp_path)
    ran: list[tuple[str, ...]] = []
    refused = _DIGEST_INVALID.replace(
        "400 Bad Request: provided digest did not match uploaded content", "401 Unauthorized"
    )

    def bake(b, plan, **_):
        ran.append(b.targets)
        return (
            {"api": BuildError(refused), "db": BuildError(_DIGEST_INVALID)}
            if len(b.targets) > 1
            else {"db": BuildError(_DIGEST_INVALID)}
        )

    monkeypatch.setattr(run, "run_bake", bake)
    monkeypatch.setattr(run, "PUSH_SETTLE", 0.0)
    outcomes = run.run_builds(the_plan, echo=lambda _: None)
    assert ran == [("api", "db"), ("db",)]  # db once more, then its error stands; api's refusal never
    assert isinstance(outcomes["db"], BuildError) and "did not match" in outcomes["db"].message
    assert isinstance(outcomes["api"], BuildError) and "401" in outcomes["api"].message
