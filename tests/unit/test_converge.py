"""The flow of `farm up` without Docker: observe and apply are replaced at their module
boundary, so what is checked is the flow itself (dry run, no-op, apply then prove it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from observed import converged_state, state

from buildkit_farm.errors import NotConverged
from buildkit_farm.farmfile.desired import BuilderSettings, Desired, NodeSettings
from buildkit_farm.reconcile import converge

N1 = NodeSettings(
    "node1", "node1", "unix:///var/run/docker.sock", None, True, ("linux/amd64",), "docker-container",
    (("network", "host"),), None, None,
)  # fmt: skip
DESIRED = Desired(Path("farm.toml"), BuilderSettings("ch16", "docker-container"), (N1,))
EMPTY = state(builder=False, record=False)


class Farm:
    """Stands in for the engines: each observation returns the next state; applies are counted."""

    def __init__(self, monkeypatch, *states) -> None:
        self.states, self.applied, self.recorded = list(states), [], []
        monkeypatch.setattr(converge, "observe", self.observe)
        monkeypatch.setattr(converge, "apply_plan", lambda plan, paths, report=None: self.applied.append(plan))
        monkeypatch.setattr(converge, "record_buildkits", lambda *a: self.recorded.append(a[-1]))

    def observe(self, desired, *, docker_config=None, live=False, prefetch=None):
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def test_a_dry_run_plans_and_changes_nothing(monkeypatch, tmp_path):
    farm = Farm(monkeypatch, EMPTY)
    result = converge.converge(DESIRED, docker_config=tmp_path, dry_run=True)
    assert not result.applied and result.status is None and farm.applied == []
    assert [s.kind for s in result.plan.changes] == ["context", "builder", "node", "buildkit"]


def test_a_converged_farm_is_verified_and_nothing_is_applied(monkeypatch, tmp_path):
    farm = Farm(monkeypatch, converged_state(N1))
    result = converge.converge(DESIRED, docker_config=tmp_path)
    assert not result.applied and farm.applied == []
    assert farm.recorded == [frozenset()]  # what a probe learnt is still recorded
    assert [n.status for n in result.status.nodes] == ["running"]


def test_changes_are_applied_then_proved_by_a_new_observation(monkeypatch, tmp_path):
    farm = Farm(monkeypatch, EMPTY, converged_state(N1), converged_state(N1))
    result = converge.converge(DESIRED, docker_config=tmp_path)
    assert result.applied and len(farm.applied) == 1 and result.plan.changes
    assert result.status.nodes[0].version == "v0.13.2"


def test_a_farm_that_still_differs_after_apply_is_not_converged(monkeypatch, tmp_path):
    Farm(monkeypatch, EMPTY)  # every observation: still nothing there
    with pytest.raises(NotConverged, match="still differs"):
        converge.converge(DESIRED, docker_config=tmp_path)


def test_a_node_missing_its_pinned_platform_is_not_usable(monkeypatch, tmp_path):
    observed = converged_state(N1)
    bk = replace(observed.buildkits["ch16-node1"], platforms=("linux/arm64",))
    Farm(monkeypatch, replace(observed, buildkits={"ch16-node1": bk}))
    with pytest.raises(NotConverged, match="pinned linux/amd64 not among") as caught:
        converge.converge(DESIRED, docker_config=tmp_path)
    assert "QEMU" in caught.value.hint


def test_the_build_is_refused_until_the_farm_matches_the_file(monkeypatch, tmp_path):
    Farm(monkeypatch, EMPTY)
    with pytest.raises(NotConverged, match="`farm up` would") as caught:
        converge.ensure_converged(DESIRED, docker_config=tmp_path)
    assert "--up" in caught.value.hint
