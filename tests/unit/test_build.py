"""`farm build`'s pure parts: input checks, scheduling, commands, progress parsing."""

from __future__ import annotations

import json
import shlex
import types
from pathlib import Path

import pytest
from farms import ONE_NODE

from buildkit_farm.builds import check, command, plan, progress, report, resolve, run, schedule
from buildkit_farm.errors import BuildError, ConfigError, UsageError
from buildkit_farm.farmfile import reference
from buildkit_farm.farmfile.desired import TargetSpec
from buildkit_farm.farmfile.load import load_config_text
from buildkit_farm.farmfile.model import SecretConfig, TargetConfig
from buildkit_farm.farmfile.targets import target_spec

# ------------------------------------------------------------------ fixtures


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM 127.0.0.1:5000/base\n")
    return tmp_path / "app"


POOLS = {"linux/amd64": ("node1",), "linux/arm64": ("node2",)}


def target(app_dir: Path, **fields) -> TargetSpec:
    """A target as the loader hands it to the build: a frozen spec of a checked table."""
    values = dict(name="app", context=app_dir, platforms=("linux/amd64", "linux/arm64"), tags=("127.0.0.1:5000/app:1",))
    values.update(fields)
    return target_spec(TargetConfig(**values), POOLS)


NODES = (
    schedule.NodeView(
        "node1", "node1", True, ("linux/amd64",), ("linux/amd64", "linux/arm64", "linux/arm/v7"), "v0.13.2"
    ),
    schedule.NodeView("node2", "node2", True, ("linux/arm64",), ("linux/arm64", "linux/arm/v7"), "v0.13.2"),
)


# ------------------------------------------------------------------ tags


@pytest.mark.parametrize(
    "tags, variables, env, expected",
    [
        (["r:5000/app:{version}"], {"version": "1.2"}, {}, ("r:5000/app:1.2",)),
        (["r:5000/app:{version}"], {"version": "cli"}, {"VERSION": "env"}, ("r:5000/app:cli",)),
        (
            ["r:5000/app:{a}-{b}", "r:5000/app:latest"],
            {"a": "x", "b": "y"},
            {},
            ("r:5000/app:x-y", "r:5000/app:latest"),
        ),
        (["r/app", "r/app"], {}, {}, ("r/app",)),
    ],
)
def test_fill_tags(tags, variables, env, expected):
    assert resolve.fill_tags(tags, target="app", variables=variables, env=env) == expected


def test_placeholders_are_never_filled_from_the_environment():
    """`--tag 'app:{NPM_TOKEN}'` must not push a token: the environment is not a source."""
    env = {"NPM_TOKEN": "npm_s3cr3tvalue", "npm_token": "npm_s3cr3tvalue"}
    with pytest.raises(UsageError) as err:
        resolve.fill_tags(["r/app:{NPM_TOKEN}"], target="app", variables={}, env=env)
    assert "{NPM_TOKEN}" in err.value.message and err.value.exit_code == 2
    assert "s3cr3t" not in err.value.message + (err.value.hint or "")
    assert "--var NPM_TOKEN=VALUE" in err.value.hint


@pytest.mark.parametrize(
    "value",
    [
        "ghp_" + "a" * 36,
        "AKIA" + "B" * 16,
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "https://user:hunter2@example.com/x",
    ],
)
def test_a_credential_looking_build_arg_is_warned_about_without_its_value(value):
    (warning,) = resolve.credential_warnings({"TOKEN": value, "VERSION": "1.0"}, target="app")
    assert "TOKEN" in warning and value not in warning and "--secret" in warning


def test_plain_build_args_are_not_warned_about():
    assert resolve.credential_warnings({"VERSION": "1.0", "URL": "https://example.com/x"}, target="app") == []


def test_unfilled_placeholder_names_it_and_how_to_fill_it():
    with pytest.raises(UsageError) as err:
        resolve.fill_tags(["r/app:{version}-{arch}"], target="app", variables={"arch": "x"}, env={})
    assert '"r/app:{version}-{arch}" has unfilled {version}' in err.value.message
    assert "--var version=VALUE" in err.value.hint
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    "tag", ["R:5000/App:1", "r/app:-x", "r/app:1@sha256:" + "a" * 64, "http://r/app", "r/app:a b", ""]
)
def test_malformed_tag_is_refused(tag):
    with pytest.raises(UsageError) as err:
        resolve.fill_tags([tag], target="app", variables={}, env={})
    assert 'target "app"' in err.value.message


@pytest.mark.parametrize(
    "ref, repo, tag",
    [
        ("127.0.0.1:5000/app:1.0", "127.0.0.1:5000/app", "1.0"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app", "latest"),
        ("a/b/c:x", "a/b/c", "x"),
    ],
)
def test_split_tag(ref, repo, tag):
    assert reference.split_tag(ref) == (repo, tag)


# ------------------------------------------------------------------ secrets and pairs


def test_parse_secret_env_and_src():
    assert resolve.parse_secret("id=npm,env=NPM_TOKEN") == resolve.SecretSpec("npm", env="NPM_TOKEN")
    assert resolve.parse_secret("id=key,src=/tmp/k") == resolve.SecretSpec("key", src="/tmp/k")


@pytest.mark.parametrize(
    "spec", ["npm", "id=npm", "id=npm,env=A,src=/b", "env=A", "id=x,value=hunter2", "hunter2", "id=x,hunter2=y"]
)
def test_bad_secret_spec_is_refused_without_showing_values(spec):
    with pytest.raises(UsageError) as err:
        resolve.parse_secret(spec)
    assert "hunter2" not in err.value.message and "/b" not in err.value.message


def test_unset_secret_env_is_refused_before_build(app_dir):
    t = target(app_dir, secrets=(SecretConfig(id="token", env="FARM_TEST_TOKEN"),))
    with pytest.raises(UsageError) as err:
        resolve.resolve_target(t, resolve.BuildOptions(), env={})
    assert 'secret "token" reads $FARM_TEST_TOKEN, which is not set' in err.value.message
    resolve.resolve_target(t, resolve.BuildOptions(), env={"FARM_TEST_TOKEN": "s3cr3t"})


def test_missing_secret_file_is_refused(app_dir):
    with pytest.raises(UsageError, match="does not exist"):
        resolve.resolve_target(target(app_dir), resolve.BuildOptions(secrets=("id=k,src=/nonexistent/k",)), env={})


def test_cli_secret_replaces_file_secret_with_same_id(app_dir):
    t = target(app_dir, secrets=(SecretConfig(id="token", env="A"),))
    prepared = resolve.resolve_target(t, resolve.BuildOptions(secrets=("id=token,env=B",)), env={"B": "x"})
    assert prepared.secrets == (resolve.SecretSpec("token", env="B"),)


def test_parse_pairs():
    assert resolve.parse_pairs(["a=1", "b=x=y", "c="], flag="--build-arg") == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(UsageError, match='--var "oops" is not KEY=VALUE'):
        resolve.parse_pairs(["oops"], flag="--var")


# ------------------------------------------------------------------ targets and inputs


class _Config:
    def __init__(self, *targets):
        self.targets = targets
        self.file = Path("farm.toml")
        self.builder = types.SimpleNamespace(driver="docker-container", name="farm")


def test_select_targets(app_dir):
    one, two = target(app_dir, name="one"), target(app_dir, name="two")
    config = _Config(one, two)
    assert resolve.select_targets(config, []) == [one, two]
    assert resolve.select_targets(config, ["two"]) == [two]
    with pytest.raises(UsageError) as err:
        resolve.select_targets(config, ["three"])
    assert "unknown target 'three'" in err.value.message and "one, two" in err.value.hint


def _refused(tmp_path: Path, table: str) -> list[tuple[str, str]]:
    """The target rules live once, in the loader (farmfile.rules): every (path, message) it refuses."""
    with pytest.raises(ConfigError) as err:
        load_config_text(
            ONE_NODE + '[[target]]\nname = "app"\ntags = ["127.0.0.1:5000/app:1"]\n' + table, base=tmp_path
        )
    return [(i.path, i.message) for i in err.value.issues]


def test_missing_context_and_dockerfile(app_dir):
    base = app_dir.parent
    assert ('target "app".context', f"folder not found: {base / 'nope'}") in _refused(
        base, 'context = "nope"\nplatforms = ["linux/amd64"]'
    )
    (app_dir / "Dockerfile").unlink()
    issues = _refused(base, 'context = "app"\nplatforms = ["linux/amd64"]')
    assert any(path == 'target "app".context' and "file not found" in m and "Dockerfile" in m for path, m in issues)


def test_dockerfiles_must_match_platforms(app_dir):
    (app_dir / "Dockerfile.arm64").write_text("FROM x\n")
    t = target(
        app_dir,
        dockerfiles={"linux/amd64": app_dir / "Dockerfile", "linux/arm64": app_dir / "Dockerfile.arm64"},
        platforms=(),
    )
    prepared = resolve.resolve_target(t, resolve.BuildOptions(), env={})
    assert prepared.platforms == ("linux/amd64", "linux/arm64")
    base = app_dir.parent
    dockerfiles = 'dockerfiles = { "linux/amd64" = "app/Dockerfile", "linux/arm64" = "app/Dockerfile.arm64" }'
    assert ('target "app".platforms[2]', "linux/arm/v7 has no Dockerfile in dockerfiles") in _refused(
        base,
        f'context = "app"\n{dockerfiles}\nplatforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]\n'
        'allow_emulation = ["linux/arm/v7"]',
    )
    (app_dir / "Dockerfile.arm64").unlink()
    issues = _refused(base, f'context = "app"\n{dockerfiles}')
    assert any(path == 'target "app".dockerfiles."linux/arm64"' and "file not found" in m for path, m in issues)


def test_cli_overrides_file(app_dir):
    t = target(
        app_dir, args={"A": "1", "B": "2"}, labels={"x": "1"}, target="prod", provenance=True, cache_from=("r/c:1",)
    )
    opts = resolve.BuildOptions(
        tags=("r/app:cli",),
        build_args={"B": "3"},
        labels={"y": "2"},
        target="dev",
        provenance=False,
        cache_from=("r/c:2",),
    )
    p = resolve.resolve_target(t, opts, env={})
    assert p.tags == ("r/app:cli",) and p.repo == "r/app"
    assert p.build_args == {"A": "1", "B": "3"} and p.labels == {"x": "1", "y": "2"}
    assert p.stage == "dev" and p.provenance is False and p.cache_from == ("r/c:2",)


def test_sources_only_target_needs_no_context(tmp_path):
    t = TargetConfig(name="win", context=tmp_path / "none", sources=("r/app:windows-amd64",), tags=("r/app:1",))
    p = resolve.resolve_target(target_spec(t, {}), resolve.BuildOptions(), env={})
    assert p.sources_only and p.repo is None
    assert command.invocations(p) == ()


def test_nothing_to_build(app_dir):
    assert ('target "app"', "platforms is required") in _refused(app_dir.parent, 'context = "app"\nplatforms = []')


def test_bad_progress_mode(app_dir):
    with pytest.raises(UsageError, match="--progress"):
        resolve.resolve(_Config(target(app_dir)), [], resolve.BuildOptions(progress="fancy"), env={})


def test_verify_run_is_refused_where_nodes_have_no_docker_engine(app_dir):
    config = _Config(target(app_dir))
    config.builder = types.SimpleNamespace(driver="remote", name="farm")
    with pytest.raises(UsageError) as err:
        resolve.resolve(config, [], resolve.BuildOptions(verify_run=True), env={})
    assert (
        "remote driver's nodes are BuildKit daemons" in err.value.message and "docker run --platform" in err.value.hint
    )
    assert resolve.resolve(config, [], resolve.BuildOptions(), env={})  # without --verify-run it builds


# ------------------------------------------------------------------ scheduling


def test_every_platform_on_its_pinned_node():
    got = schedule.schedule(["linux/amd64", "linux/arm64"], NODES, target="app")
    assert got == (
        schedule.Assignment("linux/amd64", "node1", False),
        schedule.Assignment("linux/arm64", "node2", False),
    )


def test_unpinned_platform_is_refused_naming_who_would_emulate():
    with pytest.raises(UsageError) as err:
        schedule.schedule(["linux/amd64", "linux/arm/v7"], NODES, target="app")
    assert "no node is pinned to linux/arm/v7" in err.value.message
    assert 'would emulate it on "node1"' in err.value.message
    assert 'allow_emulation = ["linux/arm/v7"]' in err.value.hint


def test_allowed_emulation_says_which_node():
    got = schedule.schedule(["linux/arm/v7"], NODES, target="app", allow_emulation=["linux/arm/v7"])
    assert got == (schedule.Assignment("linux/arm/v7", "node1", True),)


def test_emulation_goes_to_first_node_reporting_it_else_first_node():
    nodes = (
        schedule.NodeView("a", "a", True, ("linux/amd64",), ("linux/amd64",)),
        schedule.NodeView("b", "b", True, ("linux/arm64",), ("linux/arm64", "linux/s390x")),
    )
    assert schedule.schedule(["linux/s390x"], nodes, target="t", allow_emulation=["linux/s390x"])[0].node == "b"
    assert schedule.schedule(["linux/ppc64le"], nodes, target="t", allow_emulation=["linux/ppc64le"])[0].node == "a"


def test_pinned_node_down_fails_the_build():
    nodes = (NODES[0], schedule.NodeView("node2", "node2", False, ("linux/arm64",), status="stopped"))
    with pytest.raises(BuildError) as err:
        schedule.schedule(["linux/arm64"], nodes, target="app")
    assert 'linux/arm64 is pinned to node "node2", which is stopped' in err.value.message
    assert err.value.exit_code == 1


def test_platform_pinned_twice_goes_to_the_first_node_as_buildx_does():
    up = (schedule.NodeView("n1", "n1", True, ("linux/amd64",)), schedule.NodeView("n3", "n3", True, ("linux/amd64",)))
    assert schedule.schedule(["linux/amd64"], up, target="t")[0].node == "n1"
    first_down = (schedule.NodeView("n1", "n1", False, ("linux/amd64",), status="unreachable"), up[1])
    with pytest.raises(BuildError, match='pinned to node "n1", which is unreachable'):
        schedule.schedule(["linux/amd64"], first_down, target="t")


# ------------------------------------------------------------------ commands


def prepared(app_dir, **fields):
    return resolve.resolve_target(target(app_dir, **fields), resolve.BuildOptions(), env={"TOKEN": "s3cr3t"})


def test_one_invocation_pushes_by_digest(app_dir, tmp_path):
    (inv,) = command.invocations(prepared(app_dir))
    assert inv.spec["platforms"] == ["linux/amd64", "linux/arm64"]
    assert inv.spec["output"] == [
        f"type=image,name=127.0.0.1:5000/app:{command.STAGING_TAG},push-by-digest=true,name-canonical=true,push=true"
    ]
    assert "type=provenance,disabled=true" in inv.spec["attest"]  # provenance off
    assert "tags" not in inv.spec  # the user's tags move only after the checks


def test_per_platform_dockerfiles_give_one_invocation_each(app_dir, tmp_path):
    (app_dir / "Dockerfile.arm64").write_text("FROM x\n")
    p = prepared(
        app_dir,
        dockerfiles={"linux/amd64": app_dir / "Dockerfile", "linux/arm64": app_dir / "Dockerfile.arm64"},
        platforms=(),
    )
    invs = command.invocations(p)
    assert {i.spec["output"][0].split(",")[1] for i in invs} == {"name=127.0.0.1:5000/app"}
    assert [(i.label, i.spec["platforms"], Path(i.spec["dockerfile"]).name) for i in invs] == [
        ("linux/amd64", ["linux/amd64"], "Dockerfile"),
        ("linux/arm64", ["linux/arm64"], "Dockerfile.arm64"),
    ]
    assert len({i.key for i in invs}) == 2  # each its own bake target


def test_the_build_is_written_once_and_dry_run_prints_what_runs(app_dir, tmp_path):
    """One build, one written form (the bake target): every setting lands in it, the run writes
    `bake.definition()` and runs `plan.command(...)`, and --dry-run prints those same two."""
    p = resolve.resolve_target(
        target(
            app_dir,
            args={"A": "1"},
            labels={"l": "v"},
            target="prod",
            cache_from=("r/cache:1", "type=registry,ref=r/cache:2"),
            cache_to=("type=registry,ref=r/cache:1,mode=max",),
            ssh=("default",),
            sbom=True,
            secrets=(SecretConfig(id="tok", env="TOKEN"),),
        ),
        resolve.BuildOptions(no_cache=True, pull=True),
        env={"TOKEN": "x"},
    )
    the_plan = plan.make_plan([p], NODES, resolve.BuildOptions(), builder="farm", docker_config=str(tmp_path))
    (bake,) = the_plan.bakes
    spec = bake.definition()["target"]["app"]
    assert spec["args"] == {"A": "1"} and spec["labels"] == {"l": "v"} and spec["target"] == "prod"
    assert spec["cache-from"] == ["type=registry,ref=r/cache:1", "type=registry,ref=r/cache:2"]
    assert spec["cache-to"] == ["type=registry,ref=r/cache:1,mode=max"] and spec["ssh"] == ["default"]
    assert spec["attest"] == ["type=provenance,disabled=true", "type=sbom"] and spec["secret"] == ["id=tok,env=TOKEN"]
    assert spec["no-cache"] is True and spec["pull"] is True
    argv = the_plan.command(bake, Path("<run>/bake-1.json"), Path("<run>/metadata-1.json"), program="docker")
    assert argv[:3] == ["docker", "--config", str(tmp_path)] and argv[3:5] == ["buildx", "bake"]
    shown = "\n".join(plan.render(the_plan))
    assert shlex.join(argv) in shown
    printed = json.loads(shown.split("# <run>/bake-1.json:\n", 1)[1].split("\n# ", 1)[0])
    assert printed == bake.definition(shown=True)
    assert printed["target"]["app"]["secret"] == ["id=tok,env=REDACTED"]
    assert {k: v for k, v in printed["target"]["app"].items() if k != "secret"} == {
        k: v for k, v in spec.items() if k != "secret"
    }


def test_dry_run_redacts_secrets_and_shows_every_step(app_dir, tmp_path):
    p = resolve.resolve_target(
        target(app_dir, secrets=(SecretConfig(id="tok", env="TOKEN"),), variant_tags=True),
        resolve.BuildOptions(),
        env={"TOKEN": "s3cr3t"},
    )
    the_plan = plan.make_plan([p], NODES, resolve.BuildOptions(), builder="farm", docker_config=None)
    everything = "\n".join(plan.render(the_plan))
    assert "s3cr3t" not in everything and "TOKEN" not in everything and '"id=tok,env=REDACTED"' in everything
    assert "docker buildx bake --file '<run>/bake-1.json' --builder farm" in everything
    assert '"platforms": [' in everything and "linux/amd64 on node1, linux/arm64 on node2" in everything
    lines = plan.target_lines(the_plan.targets[0], the_plan)
    text = "\n".join(lines)
    assert (
        lines[0] == "docker buildx imagetools inspect --builder farm --format '{{json .}}' "
        "'127.0.0.1:5000/app@<digest of linux/amd64,linux/arm64>'"
    )
    assert (
        "imagetools create --builder farm --tag 127.0.0.1:5000/app:linux-arm64 "
        "'127.0.0.1:5000/app@<digest of linux/arm64>'" in text
    )
    assert lines[-2].startswith("docker buildx imagetools create --builder farm --tag 127.0.0.1:5000/app:1 ")
    assert lines[-1] == "docker buildx imagetools inspect --builder farm --format '{{json .}}' 127.0.0.1:5000/app:1"


def test_platform_slug():
    assert command.platform_slug("linux/arm/v7") == "linux-arm-v7"


# ------------------------------------------------------------------ progress


MULTI_FAIL = """\
#0 building with "farm" instance using docker-container driver
#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s
#5 [linux/amd64 1/2] FROM 127.0.0.1:5000/base:latest@sha256:abc
#5 DONE 0.1s
#6 [linux/arm64 1/2] FROM 127.0.0.1:5000/base:latest@sha256:abc
#6 DONE 0.1s
#7 [linux/amd64 2/2] RUN test "$(uname -m)" != aarch64
#7 DONE 0.3s
#8 [linux/arm64 2/2] RUN test "$(uname -m)" != aarch64
#8 0.120 about to fail on arm64
#8 ERROR: process "/bin/sh -c test \\"$(uname -m)\\" != aarch64" did not complete successfully: exit code: 1
------
 > [linux/arm64 2/2] RUN test "$(uname -m)" != aarch64:
0.120 about to fail on arm64
------
Dockerfile:2
--------------------
   1 |     FROM 127.0.0.1:5000/base:latest
   2 | >>> RUN test "$(uname -m)" != aarch64
--------------------
ERROR: failed to solve: process "/bin/sh -c test \\"$(uname -m)\\" != aarch64" did not complete successfully: exit code: 1
"""


def test_tracker_finds_the_failing_platform_and_its_last_lines():
    t = progress.ProgressTracker(["linux/amd64", "linux/arm64"], start=0.0)
    for i, line in enumerate(MULTI_FAIL.splitlines()):
        t.feed(line, float(i))
    assert t.failed_platform() == "linux/arm64"
    lines = t.failing_lines()
    assert lines[0] == ' > [linux/arm64 2/2] RUN test "$(uname -m)" != aarch64:'
    assert "0.120 about to fail on arm64" in lines
    assert lines[-1].startswith("ERROR: failed to solve")


def test_tracker_durations_per_platform():
    t = progress.ProgressTracker(["linux/amd64", "linux/arm64"], start=0.0)
    for i, line in enumerate(MULTI_FAIL.splitlines()[:10]):
        t.feed(line, float(i))
    assert t.durations(end=99.0) == {"linux/amd64": 8.0, "linux/arm64": 9.0}


def test_tracker_single_platform_steps_have_no_platform_prefix():
    t = progress.ProgressTracker(["linux/arm64"], start=0.0)
    for line in [
        "#4 [1/2] FROM x",
        "#5 [2/2] RUN false",
        "#5 ERROR: process did not complete successfully: exit code: 1",
    ]:
        t.feed(line, 1.0)
    assert t.failed_platform() == "linux/arm64"


def test_build_failure_names_target_platform_node():
    t = progress.ProgressTracker(["linux/amd64", "linux/arm64"], start=0.0)
    for line in MULTI_FAIL.splitlines():
        t.feed(line, 1.0)
    inv = command.Invocation(("linux/amd64", "linux/arm64"), Path("Dockerfile"), {}, "all")
    err = run.build_failure("app", inv, t, schedule.schedule(["linux/amd64", "linux/arm64"], NODES, target="app"), 1)
    assert err.message.startswith('target "app": build failed for linux/arm64 on node "node2" (buildx exit 1):')
    assert "about to fail on arm64" in err.message and "nothing was tagged" in err.hint


def test_digest_from_metadata(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"containerimage.digest": "sha256:" + "1" * 64}))
    assert run.digest_from_metadata(f) == "sha256:" + "1" * 64
    f.write_text("{}")
    with pytest.raises(BuildError, match="no containerimage.digest"):
        run.digest_from_metadata(f)


# ------------------------------------------------------------------ reports


def test_report_json_has_per_platform_facts():
    r = report.TargetReport(target="app", tags=["r/app:1"], digest="sha256:x")
    r.platforms.append(report.PlatformReport("linux/arm64", "node2", False, "v0.13.2", 3.5, "sha256:y"))
    data = json.loads(report.reports_json([r]))
    assert data["targets"][0]["platforms"][0] == {
        "platform": "linux/arm64",
        "node": "node2",
        "emulated": False,
        "buildkit_version": "v0.13.2",
        "duration_s": 3.5,
        "digest": "sha256:y",
        "why_emulated": None,
    }
    assert "linux/arm64" in report.render_text([r])


def test_emulated_platforms_get_their_own_build_so_pinned_ones_stay_pinned(app_dir, tmp_path):
    p = prepared(app_dir, platforms=("linux/amd64", "linux/arm64", "linux/arm/v7"), allow_emulation=("linux/arm/v7",))
    assignments = schedule.schedule(p.platforms, NODES, target="app", allow_emulation=p.allow_emulation)
    invs = command.invocations(p, assignments)
    assert [i.spec["platforms"] for i in invs] == [["linux/amd64", "linux/arm64"], ["linux/arm/v7"]]
    # two nodes: buildx merges and pushes under the name, so it carries the staging tag;
    # one node: BuildKit pushes by digest only and refuses a tagged name
    assert [i.spec["output"][0].split(",")[1] for i in invs] == [
        f"name=127.0.0.1:5000/app:{command.STAGING_TAG}",
        "name=127.0.0.1:5000/app",
    ]
    assert len({i.key for i in invs}) == 2


def test_node_views_join_file_pins_with_observed_status():
    from types import SimpleNamespace as NS

    nodes = (
        NS(name="node1", context="node1", platforms=("linux/amd64",)),
        NS(name="node2", context="node2", platforms=("linux/arm64",)),
    )
    status = NS(
        nodes=(
            NS(
                name="node1",
                context="node1",
                status="running",
                version="v0.13.2",
                detected=("linux/amd64", "linux/arm64"),
                drained=None,
            ),
        )
    )
    views = schedule.node_views(nodes, status)
    assert views[0] == schedule.NodeView(
        "node1",
        "node1",
        True,
        ("linux/amd64",),
        ("linux/amd64", "linux/arm64"),
        "v0.13.2",
        "running",
        file_pins=("linux/amd64",),
    )
    assert views[1].up is False and views[1].status == "missing"


def test_check_registries_names_a_registry_that_does_not_answer():
    import socket

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        up = listening.getsockname()[1]
        check.check_registries([f"127.0.0.1:{up}/app:1", "library/app:1"])  # Docker Hub is not probed
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = s.getsockname()[1]
    with pytest.raises(BuildError) as err:
        check.check_registries([f"127.0.0.1:{down}/app:1"])
    assert f'registry 127.0.0.1:{down} (for tag "127.0.0.1:{down}/app:1") does not answer' in err.value.message


def test_sources_only_target_runs_no_build():
    t = TargetConfig(name="win", context=Path("none"), sources=("r/app:windows-amd64",), tags=("r/app:1",))
    p = resolve.resolve_target(target_spec(t, {}), resolve.BuildOptions(), env={})
    the_plan = plan.make_plan([p], NODES, resolve.BuildOptions(), builder="farm", docker_config=None)
    assert the_plan.bakes == () and run.run_builds(the_plan, echo=print) == {"win": []}


def test_tty_progress_needs_a_terminal(app_dir):
    with pytest.raises(UsageError, match="--progress tty needs a terminal"):
        resolve.resolve(_Config(target(app_dir)), [], resolve.BuildOptions(progress="tty"), env={}, terminal=False)
    assert resolve.resolve(_Config(target(app_dir)), [], resolve.BuildOptions(progress="tty"), env={}, terminal=True)
