"""`--metadata-file`: the keys buildx build/bake write, plus farm's. Pure, from reports."""

from __future__ import annotations

import json
import stat

import pytest

from buildkit_farm.builds.metadata import Descriptor, check_path, document, write
from buildkit_farm.builds.report import PlatformReport, TargetReport
from buildkit_farm.errors import UsageError

INDEX = "application/vnd.oci.image.index.v1+json"
D1, D2, DA, DB = ("sha256:" + c * 64 for c in "12ab")


def _report(name: str, *, digest: str | None = D1, outcome: str = "published") -> TargetReport:
    return TargetReport(
        target=name,
        tags=[f"r.example/{name}:1", f"r.example/{name}:latest"],
        digest=digest,
        repo=f"r.example/{name}",
        platforms=[
            PlatformReport("linux/amd64", "node1", False, "v0.13", 1.0, DA if digest else None),
            PlatformReport("linux/arm64", "node2", True, "v0.13", 2.0, DB if digest else None),
        ],
        outcome=outcome,
    )


def test_one_target_writes_buildx_builds_keys_at_the_top():
    data = document([_report("app")], {"app": Descriptor(INDEX, D1, 1234)})
    assert data == {
        "containerimage.digest": D1,
        "containerimage.descriptor": {"mediaType": INDEX, "digest": D1, "size": 1234},
        "image.name": "r.example/app:1,r.example/app:latest",
        "farm.platforms": {
            "linux/amd64": {"digest": DA, "node": "node1", "emulated": False},
            "linux/arm64": {"digest": DB, "node": "node2", "emulated": True},
        },
        "farm.pushed": True,
        "farm.outcome": "published",
    }


def test_several_targets_write_one_object_each_as_bake_does():
    data = document(
        [_report("app"), _report("web", digest=None, outcome="failed")],
        {"app": Descriptor(INDEX, D2, 99)},
    )
    assert set(data) == {"app", "web"}
    assert data["app"]["containerimage.digest"] == D2  # the list the tags point at
    assert "containerimage.digest" not in data["web"] and "image.name" not in data["web"]
    assert data["web"]["farm.outcome"] == "failed" and data["web"]["farm.pushed"] is False


def test_no_push_says_so():
    data = document([_report("app")], {"app": Descriptor(INDEX, D1, 10)}, pushed=False)
    assert data["farm.pushed"] is False and data["containerimage.digest"] == D1


def test_written_whole_and_readable(tmp_path):
    path = tmp_path / "meta.json"
    write(path, {"containerimage.digest": D1})
    assert json.loads(path.read_text()) == {"containerimage.digest": D1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_an_unwritable_path_is_an_input_error(tmp_path):
    check_path(tmp_path / "meta.json")
    check_path(None)
    with pytest.raises(UsageError, match="is a folder"):
        check_path(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        check_path(tmp_path / "nope" / "meta.json")


def test_descriptors_are_read_back_by_digest_for_published_targets_only():
    from types import SimpleNamespace

    from buildkit_farm.builds.metadata import descriptors
    from buildkit_farm.errors import RegistryError

    asked = []

    def read(ref, *, docker_config):
        asked.append((ref, docker_config))
        if "broken" in ref:
            raise RegistryError("unreadable")
        return SimpleNamespace(media_type=INDEX, digest=ref.split("@")[1], size=321)

    reports = [
        _report("app"),
        _report("web", digest=None, outcome="failed"),
        _report("built", outcome="built"),
        _report("broken"),
    ]
    got = descriptors(reports, docker_config="/cfg", read=read)
    assert got == {"app": Descriptor(INDEX, D1, 321)}
    assert asked == [(f"r.example/app@{D1}", "/cfg"), (f"r.example/broken@{D1}", "/cfg")]
