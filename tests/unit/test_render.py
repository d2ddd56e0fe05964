"""Plan and status text: terraform-like symbols, a reason on every line, emulated platforms marked."""

from __future__ import annotations

import json

from buildkit_farm.reconcile.render import plan_json, plan_text, status_json, status_text
from buildkit_farm.reconcile.status import NodeStatus
from buildkit_farm.reconcile.steps import Action, Plan, Step

PLAN = Plan(
    builder="ch16",
    driver="docker-container",
    steps=(
        Step("context", "node1", Action.NOOP, "unix:///var/run/docker.sock, owned by the farm, up to date"),
        Step(
            "node",
            "node2",
            Action.UPDATE,
            "updated in place (--append --node)",
            (("platforms", "linux/arm64, linux/arm/v7", "linux/arm64"),),
            mode="append",
        ),
        Step("node", "node3", Action.REMOVE, "no longer in the file; it leaves the builder"),
    ),
)


def test_plan_text_has_symbols_reasons_changes_and_a_summary():
    text = plan_text(PLAN)
    assert "  = context node1  unix:///var/run/docker.sock, owned by the farm, up to date" in text
    assert "  ~ node node2     updated in place (--append --node)" in text
    assert "platforms: linux/arm64, linux/arm/v7 -> linux/arm64" in text
    assert "  - node node3" in text
    assert text.endswith("Plan: 0 to create, 1 to update, 0 to replace, 1 to remove, 1 unchanged.")


def test_converged_plan_says_no_changes():
    plan = Plan("ch16", "docker-container", PLAN.steps[:1])
    assert plan_text(plan).endswith("No changes: the farm matches the file (1 things checked).")


def test_plan_json_is_data():
    data = json.loads(plan_json(PLAN))
    assert data["converged"] is False
    assert data["steps"][1] == {
        "kind": "node",
        "name": "node2",
        "action": "update",
        "symbol": "~",
        "reason": "updated in place (--append --node)",
        "changes": [{"field": "platforms", "old": "linux/arm64, linux/arm/v7", "new": "linux/arm64"}],
        "mode": "append",
    }


NODE2 = NodeStatus(
    name="node2",
    buildx_node="ch16-node2",
    context="node2",
    endpoint="ssh://farm@127.0.0.1:2222",
    status="running",
    version="v0.13.2",
    pinned=("linux/arm64",),
    detected=("linux/amd64", "linux/arm64"),
    native=("linux/amd64",),
    emulated=("linux/arm64",),
)


def test_status_marks_emulated_platforms():
    text = status_text("ch16", (NODE2,))
    header, row = text.splitlines()[1:3]
    assert header.split() == ["NODE", "ENDPOINT", "STATUS", "BUILDKIT", "PINNED", "DETECTED"]
    assert "linux/amd64, linux/arm64 (emulated)" in row and "v0.13.2" in row
    assert json.loads(status_json("ch16", (NODE2,)))["nodes"][0]["emulated"] == ["linux/arm64"]


def test_what_docker_reported_is_shown_without_credentials_or_control_characters():
    step = Step("context", "node1", Action.UPDATE, "endpoint changed", (("endpoint", "tcp://u:hunter2@h:2376", "x"),))
    text = plan_text(Plan(builder="b", driver="docker-container", steps=(step,)))
    assert "hunter2" not in text
    step = Step("context", "node1\x1b[31m", Action.NOOP, "ok")
    assert "\x1b" not in plan_text(Plan(builder="b", driver="docker-container", steps=(step,)))
