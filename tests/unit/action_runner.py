"""A small GitHub Actions runner for the tests: runs action.yml's steps as a runner does.

What it does like GitHub's runner: the action's inputs (defaults, then `with:`) and the
`${{ context.path }}` expressions spliced into each step's `env:` and `run:`; every `run:`
written to a file and run with `bash --noprofile --norc -eo pipefail FILE`; a new
GITHUB_ENV, GITHUB_OUTPUT, GITHUB_PATH and GITHUB_STEP_SUMMARY file per step, read after
it (`NAME=VALUE` and the `NAME<<DELIMITER` form), so a step's env and path reach the later
steps and the job, its outputs reach `steps.ID.outputs`. Nothing is masked: a test can see
every byte a real log would have held before masking.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class RunnerError(AssertionError):
    """A file command or an expression the runner would refuse."""


def parse_file_command(text: str) -> dict[str, str]:
    """GITHUB_ENV / GITHUB_OUTPUT as the runner reads them: NAME=VALUE or NAME<<DELIM ... DELIM."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            try:
                end = lines.index(delimiter, i + 1)
            except ValueError:
                raise RunnerError(f"no end delimiter {delimiter!r} for {name!r}") from None
            values[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
            i += 1
        else:
            raise RunnerError(f"invalid file command line: {line!r}")
        if not NAME.fullmatch(name):
            raise RunnerError(f"invalid name {name!r}")
    return values


@dataclass
class StepResult:
    name: str
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    env: dict[str, str]  # what the step added to GITHUB_ENV
    path: list[str]  # what it added to GITHUB_PATH
    summary: str


@dataclass
class Job:
    """One job on a runner: its temp folder, its env, and its steps' results so far."""

    home: Path  # the runner's work folder: RUNNER_TEMP and the file commands live under it
    base_env: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)  # GITHUB_ENV so far
    path: list[str] = field(default_factory=list)  # GITHUB_PATH so far (first = newest)
    results: list[StepResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.temp = self.home / "temp"
        self.temp.mkdir(parents=True, exist_ok=True)
        self.files = self.home / "file_commands"
        self.files.mkdir(exist_ok=True)

    def run(
        self, script: str, *, name: str = "run", env: dict[str, str] | None = None, timeout: float = 600
    ) -> StepResult:
        """One `run:` step with `shell: bash`."""
        step_files = {kind: self.files / f"{kind.lower()}_{uuid.uuid4()}" for kind in self._FILES}
        for path in step_files.values():
            path.touch()
        script_file = self.temp / f"{uuid.uuid4()}.sh"
        script_file.write_text(script)
        full_env = {**self.base_env, **self.env, **(env or {})}
        full_env["PATH"] = os.pathsep.join([*self.path, full_env.get("PATH", os.defpath)])
        full_env.update({kind: str(path) for kind, path in step_files.items()})
        full_env["RUNNER_TEMP"] = str(self.temp)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=full_env.get("GITHUB_WORKSPACE"),
        )
        result = StepResult(
            name=name,
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            outputs=parse_file_command(step_files["GITHUB_OUTPUT"].read_text()),
            env=parse_file_command(step_files["GITHUB_ENV"].read_text()),
            path=[line for line in step_files["GITHUB_PATH"].read_text().splitlines() if line],
            summary=step_files["GITHUB_STEP_SUMMARY"].read_text(),
        )
        self.env.update(result.env)
        self.path[:0] = list(reversed(result.path))
        self.results.append(result)
        return result

    _FILES = ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")

    def uses(
        self,
        action_dir: Path,
        with_: dict[str, str] | None = None,
        *,
        steps: tuple[str, ...] | None = None,
        env: dict[str, str] | None = None,
    ) -> tuple[dict[str, str], list[StepResult]]:
        """A `uses:` step of a composite action: its steps (those with an id in `steps`, else
        all) until one fails; returns the action's outputs and the steps' results."""
        action = yaml.safe_load((action_dir / "action.yml").read_text())
        assert action["runs"]["using"] == "composite"
        unknown = set(with_ or {}) - set(action.get("inputs", {}))
        assert not unknown, f"unknown inputs {unknown}"
        context: dict = {"github": {"action_path": str(action_dir)}, "runner": {"temp": str(self.temp)}}
        context["env"] = {**self.base_env, **self.env, **(env or {})}
        context["inputs"] = {}
        for key, spec in action.get("inputs", {}).items():
            given = (with_ or {}).get(key)
            context["inputs"][key] = given if given is not None else self.splice(str(spec.get("default", "")), context)
        context["steps"] = {}
        results = []
        for step in action["runs"]["steps"]:
            if steps is not None and step.get("id") not in steps:
                continue
            assert step.get("shell") == "bash", step
            context["env"] = {**self.base_env, **self.env, **(env or {})}
            step_env = {**(env or {}), **{k: self.splice(str(v), context) for k, v in step.get("env", {}).items()}}
            result = self.run(self.splice(step["run"], context), name=step.get("name", "run"), env=step_env)
            results.append(result)
            if "id" in step:
                context["steps"][step["id"]] = {"outputs": result.outputs}
            if result.returncode != 0:
                break
        outputs = {
            key: self.splice(str(spec["value"]), context, missing_ok=True)
            for key, spec in action.get("outputs", {}).items()
        }
        return outputs, results

    @staticmethod
    def splice(text: str, context: dict, *, missing_ok: bool = False) -> str:
        """`${{ a.b.c }}` replaced by the context's value; any other expression is refused."""

        def value(match: re.Match) -> str:
            path = match.group(1)
            if not re.fullmatch(r"[a-z_]+(\.[A-Za-z0-9_-]+)+", path):
                raise RunnerError(f"expression not supported here: {path!r}")
            node = context
            for part in path.split("."):
                if not isinstance(node, dict) or part not in node:
                    if missing_ok:
                        return ""
                    raise RunnerError(f"no {path!r} in the context")
                node = node[part]
            return str(node)

        return EXPRESSION.sub(value, text)
