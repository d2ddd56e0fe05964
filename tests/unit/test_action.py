"""The composite action (action.yml), its steps run by a small runner (action_runner.py) with
`farm` replaced by a recorder of its argv: the action's contract with farm is the argv.

Hostile inputs (newlines, quotes, `$(...)`, `;`, a leading `-`) must stay one argument or be
an input error (exit 2): never a command, never an option, never a line of their own in
GITHUB_ENV, GITHUB_OUTPUT or GITHUB_PATH.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path

import pytest
import yaml
from action_runner import Job, RunnerError, parse_file_command

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"

# The stand-in farm: one JSON line of argv per call; `validate` prints $RECORDER_VALIDATE;
# `build` writes $RECORDER_REPORT / $RECORDER_METADATA where --report= / --metadata-file= say,
# then exits $RECORDER_EXIT.
RECORDER = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[:1] == ["validate"]:
    print(os.environ.get("RECORDER_VALIDATE", "{{}}"))
for arg in args:
    for flag, var in (("--report=", "RECORDER_REPORT"), ("--metadata-file=", "RECORDER_METADATA")):
        if arg.startswith(flag) and var in os.environ:
            with open(arg[len(flag):], "w") as f:
                f.write(os.environ[var])
sys.exit(int(os.environ.get("RECORDER_EXIT", "0")))
"""

PWNED = "$(touch pwned)"
HOSTILE = [
    "--tag=evil/x",
    "--secret id=k,src=/etc/shadow",
    PWNED,
    "`touch pwned`",
    "a; touch pwned",
    'it\'s "quoted"',
    "-rf",
]


@pytest.fixture()
def job(tmp_path: Path) -> Job:
    """A job whose farm is the recorder (as if the install step had run)."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    farm = bin_dir / "farm"
    farm.write_text(RECORDER.format(python=sys.executable, log=str(tmp_path / "farm.calls")))
    farm.chmod(farm.stat().st_mode | stat.S_IEXEC)
    (bin_dir / "python").symlink_to(sys.executable)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    base = {"PATH": os.environ["PATH"], "HOME": str(home), "GITHUB_WORKSPACE": str(workspace)}
    the_job = Job(home=tmp_path / "runner", base_env=base)
    the_job.env["BUILDKIT_FARM"] = str(farm)
    return the_job


def calls(job: Job) -> list[list[str]]:
    log = job.home.parent / "farm.calls"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def build(job: Job, inputs: dict[str, str], env: dict[str, str] | None = None):
    job.env.setdefault("FARM_DOCKER_CONFIG", "/dc")
    outputs, (result,) = job.uses(ROOT, inputs, steps=("build",), env=env)
    return outputs, result


def assert_nothing_ran(job: Job) -> None:
    workspace = Path(job.base_env["GITHUB_WORKSPACE"])
    assert not list(workspace.iterdir()), "an input ran as a command"


# -- the action's file ---------------------------------------------------------------------


def test_every_input_reaches_the_shell_through_the_environment_only():
    action = yaml.safe_load(ACTION.read_text())
    used = set()
    for step in action["runs"]["steps"]:
        assert "${{" not in step["run"], step["name"]  # nothing spliced into a script
        for value in step.get("env", {}).values():
            used.update(re.findall(r"\$\{\{ inputs\.([a-z-]+) \}\}", value))
    assert used == set(action["inputs"])


def test_the_inputs_and_outputs_of_build_push_action_exist():
    action = yaml.safe_load(ACTION.read_text())
    for key in ("tags", "labels", "build-args", "no-cache", "platforms", "set", "push", "atomic", "verify-run"):
        assert key in action["inputs"], key
    assert action["inputs"]["push"]["default"] == "true"
    assert action["inputs"]["docker-config"]["default"] == ""  # the job's own config, see test_up_*
    assert {"digest", "metadata", "report", "digests"} <= set(action["outputs"])


def test_the_constraints_pin_every_runtime_dependency_exactly():
    pinned = {}
    for line in (ROOT / "action-constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned with =="
            pinned[name.lower().replace("_", "-")] = version
    for dependency in ("python-on-whales", "pydantic", "pydantic-core", "typer", "tomli-w", "tomli", "rich"):
        assert dependency in pinned, dependency


# -- the runner itself -----------------------------------------------------------------------


def test_the_runner_reads_file_commands_as_github_does():
    text = "A=1\nB<<EOF_x\nline 1\nline 2\nEOF_x\nC=a=b\n"
    assert parse_file_command(text) == {"A": "1", "B": "line 1\nline 2", "C": "a=b"}
    with pytest.raises(RunnerError):
        parse_file_command("B<<EOF\nno end\n")
    with pytest.raises(RunnerError):
        parse_file_command("not a command\n")


# -- install -------------------------------------------------------------------------------


def test_install_pins_the_ref_and_every_dependency_and_keeps_the_venv_off_path(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A stand-in python: `-m venv DIR` makes DIR/bin/python (this same recorder) and DIR/bin/farm.
    python = bin_dir / "python3"
    python.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do printf "%s\\n" "$a"; done >> "{bin_dir}/python3.args"\n'
        f'echo ---- >> "{bin_dir}/python3.args"\n'
        'if [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python";'
        ' printf "#!/bin/sh\\necho farm 0.1.0\\n" > "$3/bin/farm"; chmod +x "$3/bin/farm"; fi\n'
    )
    python.chmod(0o755)
    job = Job(home=tmp_path / "runner", base_env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)})
    outputs, (result,) = job.uses(ROOT, {}, steps=("install",))
    assert result.returncode == 0, result.stderr
    assert "farm 0.1.0" in result.stdout
    text = (bin_dir / "python3.args").read_text()
    venv = job.temp / "buildkit-farm-venv"
    chunks = [chunk.strip("\n").split("\n") for chunk in text.split("----\n") if chunk.strip()]
    assert chunks[0] == ["-m", "venv", str(venv)]
    assert chunks[1][-3:] == ["--constraint", str(ROOT / "action-constraints.txt"), str(ROOT)]
    assert result.path == []  # later steps keep their own python and pip
    assert job.env["BUILDKIT_FARM"] == outputs["farm"] == f"{venv}/bin/farm"


def test_install_refuses_a_python_input_of_two_lines(tmp_path):
    job = Job(home=tmp_path / "runner", base_env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    _, (result,) = job.uses(ROOT, {"python": "python3\ntouch pwned"}, steps=("install",))
    assert result.returncode == 2 and "input python must be one line" in result.stderr
    assert result.env == {} and result.path == []


# -- up --------------------------------------------------------------------------------------


def test_up_uses_the_jobs_own_docker_config_so_the_login_is_kept(job):
    own = job.home.parent / "login-config"
    own.mkdir()
    (own / "config.json").write_text('{"auths": {"r.example.com": {"auth": "x"}}}')
    job.env["DOCKER_CONFIG"] = str(own)
    outputs, (result,) = job.uses(ROOT, {"file": "ci/farm.toml"}, steps=("up",))
    assert result.returncode == 0, result.stderr
    assert calls(job) == [["up", "--file=ci/farm.toml", f"--docker-config={own}"]]
    assert job.env["FARM_DOCKER_CONFIG"] == outputs["docker-config"] == str(own)
    assert (own / "config.json").read_text() == '{"auths": {"r.example.com": {"auth": "x"}}}'


def test_up_without_docker_config_uses_home_docker(job):
    _, (result,) = job.uses(ROOT, {}, steps=("up",))
    assert result.returncode == 0, result.stderr
    home_docker = Path(job.base_env["HOME"]) / ".docker"
    assert calls(job) == [["up", "--file=multiarch.toml", f"--docker-config={home_docker}"]]
    assert stat.S_IMODE(home_docker.stat().st_mode) == 0o700  # made by the action: private


def test_up_takes_the_docker_config_input_first(job):
    job.env["DOCKER_CONFIG"] = "/not/this"
    private = job.temp / "farm-docker-config"
    _, (result,) = job.uses(ROOT, {"docker-config": str(private)}, steps=("up",))
    assert result.returncode == 0, result.stderr
    assert calls(job)[0][-1] == f"--docker-config={private}"


@pytest.mark.parametrize("value", ["/tmp/x\nBASH_ENV=/tmp/evil", "/tmp/x\rBASH_ENV=/tmp/evil"])
def test_up_refuses_a_docker_config_of_two_lines_and_writes_no_env(job, value):
    _, (result,) = job.uses(ROOT, {"docker-config": value}, steps=("up",))
    assert result.returncode == 2 and "input docker-config must be one line" in result.stderr
    assert "\n" not in result.stderr.strip()  # the value is shown quoted, on the one line
    assert result.env == {} and result.outputs == {} and calls(job) == []


@pytest.mark.parametrize("value", HOSTILE)
def test_up_passes_a_hostile_file_as_one_value(job, value):
    job.env["DOCKER_CONFIG"] = str(job.temp / "dc")
    _, (result,) = job.uses(ROOT, {"file": value}, steps=("up",))
    assert result.returncode == 0, result.stderr
    assert calls(job) == [["up", f"--file={value}", f"--docker-config={job.temp / 'dc'}"]]
    assert_nothing_ran(job)


# -- build: the argv -----------------------------------------------------------------------


def test_build_translates_every_input(job):
    inputs = {
        "file": "multiarch.toml",
        "targets": "app",
        "tags": "r.example.com/app:1.2.3\nr.example.com/app:latest,r.example.com/app:1.2",
        "labels": "org.opencontainers.image.title=app\norg.opencontainers.image.description=a, b and c\n",
        "build-args": "VERSION=1.2.3\nHTTP_PROXY\n",
        "platforms": "linux/amd64, linux/arm64",
        "set": "app.args.X=1\n*.platform=linux/arm64\n",
        "vars": "  version=1.2.3 \n\nnote=two words",
        "push": "false",
        "no-cache": "true",
        "verify-run": "true",
        "atomic": "true",
        "report": "r.json",
    }
    outputs, result = build(job, inputs)
    assert result.returncode == 0, result.stderr
    metadata = job.temp / "farm-metadata.json"
    assert calls(job) == [
        ["build", "--file=multiarch.toml", "--docker-config=/dc", "--progress=plain"]
        + ["--report=r.json", f"--metadata-file={metadata}"]
        + ["--tag=r.example.com/app:1.2.3", "--tag=r.example.com/app:latest", "--tag=r.example.com/app:1.2"]
        + ["--label=org.opencontainers.image.title=app", "--label=org.opencontainers.image.description=a, b and c"]
        + ["--build-arg=VERSION=1.2.3", "--build-arg=HTTP_PROXY"]
        + ["--var=version=1.2.3", "--var=note=two words"]
        + ["--set=app.args.X=1", "--set=*.platform=linux/arm64"]
        + ["--platform=linux/amd64,linux/arm64"]
        + ["--no-push", "--no-cache", "--verify-run", "--atomic", "--", "app"]
    ]


def test_build_defaults_push_everything_with_the_default_report(job):
    _, result = build(job, {})
    assert result.returncode == 0, result.stderr
    report, metadata = job.temp / "farm-report.json", job.temp / "farm-metadata.json"
    assert calls(job) == [
        ["build", "--file=multiarch.toml", "--docker-config=/dc", "--progress=plain"]
        + [f"--report={report}", f"--metadata-file={metadata}", "--"]
    ]


@pytest.mark.parametrize("value", HOSTILE)
def test_build_hostile_targets_stay_target_names_after_the_double_dash(job, value):
    _, result = build(job, {"targets": f"app {value}"})
    assert result.returncode == 0, result.stderr
    (call,) = calls(job)
    names = call[call.index("--") + 1 :]
    assert names == ["app", *value.replace(",", " ").split()]  # words, after `--`: never an option
    assert_nothing_ran(job)


@pytest.mark.parametrize("key", ["build-args", "set", "vars", "labels"])
@pytest.mark.parametrize("value", HOSTILE)
def test_build_hostile_list_items_are_one_option_value_each(job, key, value):
    flag = {"build-args": "--build-arg", "set": "--set", "vars": "--var", "labels": "--label"}[key]
    _, result = build(job, {key: f"{value}\n{value}", "targets": "app"})
    assert result.returncode == 0, result.stderr
    (call,) = calls(job)
    assert call.count(f"{flag}={value}") == 2
    assert value not in call  # never an argument of its own
    assert call[call.index("--") :] == ["--", "app"]
    assert_nothing_ran(job)


@pytest.mark.parametrize("value", HOSTILE)
def test_build_hostile_tags_are_tag_values(job, value):
    _, result = build(job, {"tags": value, "targets": "app"})
    assert result.returncode == 0, result.stderr
    (call,) = calls(job)
    assert [a for a in call if a.startswith("--tag=")] == [f"--tag={part.strip()}" for part in value.split(",")]
    assert_nothing_ran(job)


@pytest.mark.parametrize("value", HOSTILE)
def test_build_hostile_file_and_report_are_one_value_each(job, value):
    _, result = build(job, {"file": value, "report": value})
    assert result.returncode == 0, result.stderr
    (call,) = calls(job)
    assert call[1] == f"--file={value}" and f"--report={value}" in call and value not in call
    assert_nothing_ran(job)


@pytest.mark.parametrize("key", ["file", "report"])
def test_build_refuses_a_path_of_two_lines(job, key):
    _, result = build(job, {key: "x.json\nevil=1"})
    assert result.returncode == 2 and f"input {key} must be one line" in result.stderr
    assert result.outputs == {} and calls(job) == []


@pytest.mark.parametrize("key", ["push", "no-cache", "verify-run", "atomic"])
@pytest.mark.parametrize("value", ["yes", "True", "", "true\nfalse"])
def test_build_refuses_a_boolean_that_is_not_true_or_false(job, key, value):
    _, result = build(job, {key: value})
    assert result.returncode == 2 and f'input {key} must be "true" or "false"' in result.stderr
    assert calls(job) == []


def test_build_tags_with_several_targets_is_an_input_error(job):
    _, result = build(job, {"tags": "r/app:1", "targets": "app worker"})
    assert result.returncode == 2 and "tags and labels apply to one target" in result.stderr
    assert "(the targets input names 2: app\\ worker)" in result.stderr
    assert calls(job) == []


def test_build_tags_without_targets_go_to_the_files_only_target(job):
    validate = {"ok": True, "command": "validate", "result": {"targets": [{"name": "app"}]}}
    _, result = build(job, {"labels": "a=b"}, env={"RECORDER_VALIDATE": json.dumps(validate)})
    assert result.returncode == 0, result.stderr
    assert calls(job)[0] == ["validate", "--json", "--file=multiarch.toml"]
    assert calls(job)[1][-3:] == ["--label=a=b", "--", "app"]


def test_build_tags_without_targets_and_a_file_of_two_is_an_input_error(job):
    validate = {"ok": True, "command": "validate", "result": {"targets": [{"name": "app"}, {"name": "worker"}]}}
    _, result = build(job, {"tags": "r/app:1"}, env={"RECORDER_VALIDATE": json.dumps(validate)})
    assert result.returncode == 2 and "the file has 2: app\\ worker" in result.stderr
    assert len(calls(job)) == 1  # validate only


# -- build: the outputs --------------------------------------------------------------------

DIGEST = "sha256:" + "ab" * 32


def test_build_outputs_digest_digests_metadata_and_report(job):
    report = {"ok": True, "error": None, "targets": [{"target": "app", "digest": DIGEST, "ok": True}]}
    metadata = {"app": {"containerimage.digest": DIGEST, "image.name": "r/app:1,r/app:latest"}}
    env = {"RECORDER_REPORT": json.dumps(report), "RECORDER_METADATA": json.dumps(metadata)}
    outputs, result = build(job, {"targets": "app", "report": str(job.temp / "r.json")}, env=env)
    assert result.returncode == 0, result.stderr
    assert set(result.outputs) == {"report", "metadata", "digests", "digest"}
    assert outputs["digest"] == DIGEST
    assert json.loads(outputs["digests"]) == {"app": DIGEST}
    assert json.loads(outputs["metadata"]) == metadata
    assert outputs["report"] == str(job.temp / "r.json")


def test_build_outputs_of_several_targets_have_no_single_digest(job):
    other = "sha256:" + "cd" * 32
    report = {"targets": [{"target": "app", "digest": DIGEST}, {"target": "worker", "digest": None}]}
    metadata = {"worker": {"containerimage.digest": other}}
    env = {"RECORDER_REPORT": json.dumps(report), "RECORDER_METADATA": json.dumps(metadata)}
    outputs, result = build(job, {}, env=env)
    assert result.returncode == 0, result.stderr
    assert outputs["digest"] == ""
    assert json.loads(outputs["digests"]) == {"app": DIGEST, "worker": other}


def test_a_failed_build_fails_the_step_with_farms_code_and_still_has_outputs(job):
    report = {"ok": False, "error": "boom", "targets": [{"target": "app", "digest": None}]}
    env = {"RECORDER_REPORT": json.dumps(report), "RECORDER_EXIT": "1"}
    outputs, result = build(job, {}, env=env)
    assert result.returncode == 1
    assert outputs["digest"] == "" and json.loads(outputs["digests"]) == {} and outputs["metadata"] == ""
    assert outputs["report"] == str(job.temp / "farm-report.json")


def test_a_hostile_report_path_and_target_name_add_no_output(job):
    name = "app\ndigest=sha256:evil\nBASH_ENV=/tmp/evil"
    report = {"targets": [{"target": name, "digest": DIGEST}]}
    env = {"RECORDER_REPORT": json.dumps(report)}
    outputs, result = build(job, {"report": str(job.temp / "r=1;$(x).json")}, env=env)
    assert result.returncode == 0, result.stderr
    assert set(result.outputs) == {"report", "metadata", "digests", "digest"}
    assert json.loads(outputs["digests"]) == {name: DIGEST}
    assert outputs["report"] == str(job.temp / "r=1;$(x).json")
    assert result.env == {}


@pytest.mark.parametrize("key", ["file", "targets", "vars", "verify-run", "atomic", "report"])
def test_the_issue_inputs_exist(key):
    assert re.search(rf"^  {key}:$", ACTION.read_text(), re.M)
