"""Plan cases as data: a farm file and an observed state in, the plan's steps (or its problems) out.

Each file in plan_cases/ holds:
- `title`, and `expect` (the steps as `farm plan` lists them: `SYMBOL KIND NAME`) or
  `expect-error` (words the error must contain, every blocking problem at once);
- `[file]`: the farm file itself (loaded through `load_config`, so it is a valid one);
- `[observed]`: what exists. `[[observed.node]]` tables (written like the file's nodes)
  are what a converged `farm up` left: an owned context, the buildx node as stored, a
  running BuildKit with its settings recorded. Then `builder`/`record` (false: none),
  `driver` (the stored builder's driver), `[[observed.buildkit]]` (a node's BuildKit
  overridden: `status`, `settings = "unknown"`, `error`) and `[[observed.context]]` (more
  contexts: `name`, `host`, `owned`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import tomli_w
from observed import converged_state, state

from buildkit_farm.errors import FarmError
from buildkit_farm.farmfile.desired import Desired
from buildkit_farm.farmfile.load import load_config_text
from buildkit_farm.farmfile.toml import tomllib
from buildkit_farm.reconcile.observe import OWNER_MARK, FarmState, ObservedContext
from buildkit_farm.reconcile.plan import make_plan

CASES = sorted((Path(__file__).parent / "plan_cases").glob("*.toml"))


def desired_of(farm: dict[str, Any], base: Path) -> Desired:
    return load_config_text(tomli_w.dumps(farm), base=base, name="farm.toml").desired


def observed_of(case: dict[str, Any], base: Path) -> FarmState:
    spec = case.get("observed", {})
    builder = dict(case["file"]["builder"])
    nodes = desired_of({"builder": builder, "node": spec["node"]}, base).nodes if spec.get("node") else ()
    over = {k: spec[k] for k in ("builder", "record") if k in spec}
    observed = converged_state(*nodes, **over) if nodes else state(**over)
    if "driver" in spec and observed.builder is not None:
        observed = replace(observed, builder=replace(observed.builder, driver=spec["driver"]))
    buildkits = dict(observed.buildkits)
    for bk in spec.get("buildkit", ()):
        name = f"{builder['name']}-{bk['node']}".lower()
        fields = {k: v for k, v in bk.items() if k != "node"}
        if fields.get("settings") == "unknown":
            fields["settings"] = None
        if "settings" in fields:  # what the container carries says the same
            fields["stamp"] = None
        buildkits[name] = replace(buildkits[name], **fields)
    contexts = dict(observed.contexts)
    for ctx in spec.get("context", ()):
        description = OWNER_MARK if ctx.get("owned") else ctx.get("description", "")
        contexts[ctx["name"]] = ObservedContext(ctx["name"], ctx["host"], description, (), False)
    return replace(observed, buildkits=MappingProxyType(buildkits), contexts=MappingProxyType(contexts))


def test_there_are_at_least_fifteen_cases():
    assert len(CASES) >= 15


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_plan_case(path: Path, tmp_path: Path):
    case = tomllib.loads(path.read_text(encoding="utf-8"))
    desired = desired_of(case["file"], tmp_path)
    observed = observed_of(case, tmp_path)
    if "expect-error" in case:
        with pytest.raises(FarmError) as caught:
            make_plan(desired, observed)
        for words in case["expect-error"]:
            assert words in caught.value.message, caught.value.message
        assert caught.value.exit_code == case.get("expect-exit", caught.value.exit_code)
        return
    plan = make_plan(desired, observed)
    assert [f"{s.action.symbol} {s.kind} {s.name}" for s in plan.steps] == case["expect"], case["title"]
    assert all(step.reason for step in plan.steps), "every step, no-op included, says why"
