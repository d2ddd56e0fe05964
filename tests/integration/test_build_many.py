"""`farm build` with many targets on the real lab: all at once, a failing one stops no other,
`--atomic` moves all tags or none. Nothing is mocked: real buildx, BuildKit, registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from integration.test_build import Farm, _repo  # the lab farm helper of the single-target tests

pytestmark = pytest.mark.integration

NAMES = [f"t{i}" for i in range(1, 7)]
PLATFORMS = ["linux/amd64", "linux/arm64"]


@pytest.fixture
def farm(tmp_path, docker_config, unique_name, lab):
    f = Farm(tmp_path, Path(docker_config), f"m{unique_name}".replace("-", ""), lab)
    yield f
    f.down()


def _targets(farm: Farm, repo: str) -> list[dict]:
    targets = []
    for name in NAMES:
        folder = farm.tmp / name
        folder.mkdir(exist_ok=True)
        (folder / "Dockerfile").write_text(
            f"FROM {farm.lab.base}\nARG RUN_ID\nRUN echo {name} $RUN_ID > /id\nCMD cat /id\n"
        )
        targets.append({"name": name, "context": str(folder), "platforms": PLATFORMS, "tags": [f"{repo}-{name}:1"]})
    return targets


def _digests(farm: Farm, repo: str) -> dict[str, str | None]:
    out = {}
    for name in NAMES:
        index = farm.inspect(f"{repo}-{name}:1")
        out[name] = index["digest"] if index else None
    return out


def _json(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout)["result"]


def test_six_targets_at_once_then_one_failing_then_atomic(farm, unique_name):
    repo = _repo(farm.lab, unique_name)
    farm.write(_targets(farm, repo))
    farm.up()

    # 1. Six targets at once: every tag has every platform, each line names its target.
    first = farm.build("--json", "--build-arg", "RUN_ID=1")
    assert first.returncode == 0, first.stderr[-3000:]
    report = _json(first)
    assert report["ok"] is True and [t["target"] for t in report["targets"]] == NAMES
    assert all(t["outcome"] == "published" for t in report["targets"])
    for target in report["targets"]:
        index = farm.inspect(target["tags"][0])
        assert index is not None and index["digest"] == target["digest"]
        assert {v["platform"] for v in index["variants"] if not v["is_attestation"]} == set(PLATFORMS)
        assert {p["platform"]: p["node"] for p in target["platforms"]} == {
            "linux/amd64": "node1",
            "linux/arm64": "node2",
        }
    for name in NAMES:
        assert f"[{name}] #" in first.stderr  # buildx's own progress, prefixed by its target
    # they ran at once: the six builds overlap (each started before any published)
    lines = first.stderr.splitlines()
    last_start = max(i for i, l in enumerate(lines) if ": bake target " in l and l.startswith("farm: target"))
    first_publish = min(i for i, l in enumerate(lines) if ": publishing " in l)
    assert last_start < first_publish
    before = _digests(farm, repo)

    # 2. One failing target among six: the others publish, exit 1, its tag stays.
    (farm.tmp / "t3" / "Dockerfile").write_text(f"FROM {farm.lab.base}\nRUN echo broken && exit 3\n")
    second = farm.build("--json", "--build-arg", "RUN_ID=2")
    assert second.returncode == 1, second.stderr[-3000:]
    report = _json(second)
    outcomes = {t["target"]: t["outcome"] for t in report["targets"]}
    errors = {t["target"]: t.get("error") for t in report["targets"] if t["outcome"] != "published"}
    assert outcomes == {**{n: "published" for n in NAMES}, "t3": "failed"}, (errors, second.stderr[-6000:])
    assert report["ok"] is False and "1 of 6 target(s) failed" in report["error"]
    assert 'target "t3"' in second.stderr and "exit 3" in second.stderr
    after = _digests(farm, repo)
    assert after["t3"] == before["t3"]  # untouched
    assert all(after[n] != before[n] for n in NAMES if n != "t3")  # new RUN_ID: new lists

    # 3. --atomic with that failure: nothing moves, the others are "held".
    third = farm.build("--json", "--atomic", "--build-arg", "RUN_ID=3")
    assert third.returncode == 1, third.stderr[-3000:]
    report = _json(third)
    outcomes = {t["target"]: t["outcome"] for t in report["targets"]}
    assert outcomes == {**{n: "held" for n in NAMES}, "t3": "failed"}
    assert _digests(farm, repo) == after
    assert "no tag of any target moved" in third.stderr

    # 4. --atomic once all succeed: every tag moves.
    (farm.tmp / "t3" / "Dockerfile").write_text(f"FROM {farm.lab.base}\nARG RUN_ID\nRUN echo t3 $RUN_ID > /id\n")
    fourth = farm.build("--json", "--atomic", "--build-arg", "RUN_ID=4")
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    final = _digests(farm, repo)
    assert all(final[n] != after[n] for n in NAMES)
    assert {t["outcome"] for t in _json(fourth)["targets"]} == {"published"}
