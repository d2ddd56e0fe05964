"""farm's parsers on what each real buildx printed on the lab (no Docker here).

The files under tests/unit/data/buildx/<version>/ were written by
lab/record-buildx-outputs.sh from buildx 0.13.1 and 0.29.1; nobody edits them by hand.
Each test runs once per version, so a parser is checked against exactly what each prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildkit_farm import buildx_version
from buildkit_farm.builds.run import digest_from_metadata
from buildkit_farm.farmfile import bake
from buildkit_farm.farmfile.model import BakeConfig
from buildkit_farm.reconcile.observe import parse_buildx_inspect, parse_instance
from buildkit_farm.registry.index import parse_inspect, parse_list

DATA = Path(__file__).parent / "data" / "buildx"
VERSIONS = ("0.13", "0.29")
BUILDER = {"0.13": "record-0-13", "0.29": "record-0-29"}


def _read(version: str, name: str) -> str:
    return (DATA / version / name).read_text()


def _tables(version: str) -> tuple[dict, list]:
    printed = json.loads(_read(version, "bake-print.json"))
    config = BakeConfig.model_validate({"files": ["docker-bake.hcl"]}, context={"base": "/repo"})
    raws, issues = bake.to_targets(printed, config)
    return dict(raws), issues


def test_the_recordings_come_from_the_versions_they_are_filed_under():
    for version in VERSIONS:
        found = buildx_version.parse(_read(version, "version.txt"))
        assert found is not None and found.text.startswith(version + ".1+ds1")
        assert found.number is not None and found.number[:2] == tuple(int(p) for p in version.split("."))


@pytest.mark.parametrize("version", VERSIONS)
def test_every_setting_farm_carries_reaches_the_target_table(version):
    carried = _tables(version)[0]["carried"]
    assert carried["platforms"] == ["linux/amd64", "linux/arm64"] and carried["target"] == "final"
    assert carried["tags"] == ["127.0.0.1:5000/record/carried:1"] and carried["args"] == {"VERSION": "1"}
    assert carried["secrets"] == [{"id": "npm", "env": "NPM_TOKEN"}, {"id": "key", "src": "key.txt"}]
    assert carried["ssh"] == ["default=id_record"]
    assert carried["provenance"] is True and carried["sbom"] is False
    (cache_from,) = carried["cache_from"]
    (cache_to,) = carried["cache_to"]
    assert _attrs(cache_from) == {"type": "registry", "ref": "127.0.0.1:5000/record/cache:carried"}
    assert _attrs(cache_to) == {"type": "registry", "ref": "127.0.0.1:5000/record/cache:carried", "mode": "max"}
    assert cache_to == "type=registry,mode=max,ref=127.0.0.1:5000/record/cache:carried"  # one text from both shapes


def test_both_versions_give_the_same_target_table():
    old, new = (_tables(v)[0]["carried"] for v in VERSIONS)
    assert old == new


@pytest.mark.parametrize("version", VERSIONS)
def test_what_farm_does_not_carry_is_refused_by_name_never_dropped(version):
    printed = json.loads(_read(version, "bake-print.json"))["target"]["refused"]
    _, issues = _tables(version)
    paths = {
        i.path.removeprefix('bake target "refused".') for i in issues if i.path.startswith('bake target "refused"')
    }
    # every key buildx printed that farm does not carry (0.13 leaves out network, call, ... itself)
    expected = {k for k in printed if k in bake._REFUSED} | {"attest[0]", "output[0]"}
    assert paths == expected
    assert {"pull", "no-cache", "shm-size", "ulimits", "annotations"} <= paths
    if version == "0.29":
        assert {"network", "extra-hosts", "call", "entitlements"} <= paths
    attest = next(i for i in issues if i.path.endswith("attest[0]"))
    assert "mode=max" in attest.message
    assert not [i for i in issues if i.path.startswith('bake target "carried"')]


@pytest.mark.parametrize("version", VERSIONS)
def test_buildx_inspect_gives_each_node_its_status_version_and_pinned_platform_first(version):
    nodes = parse_buildx_inspect(_read(version, "inspect.txt"))
    name = BUILDER[version]
    assert sorted(nodes) == [f"{name}0", f"{name}1"]
    first, second = nodes[f"{name}0"], nodes[f"{name}1"]
    assert first["status"] == second["status"] == "running"
    assert first["version"] and first["version"] == second["version"]
    # node3 is an amd64 engine with arm64 pinned: the native platform stays first, the pin is kept
    assert first["platforms"][0] == second["platforms"][0] == "linux/amd64"
    assert "linux/arm64" in second["platforms"] and "linux/arm/v7" in second["platforms"]
    assert all(not p.endswith("*") for p in first["platforms"] + second["platforms"])


@pytest.mark.parametrize("version", VERSIONS)
def test_the_instance_file_gives_the_nodes_endpoints_platforms_and_options(version):
    builder = parse_instance(_read(version, "instance.json"))
    assert builder.name == BUILDER[version] and builder.driver == "docker-container"
    assert [(n.endpoint, n.platforms) for n in builder.nodes] == [
        ("rec-node1", ("linux/amd64",)),
        ("rec-node3", ("linux/arm64",)),
    ]
    assert all(dict(n.driver_opts).get("network") == "host" for n in builder.nodes)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_metadata_file_gives_the_pushed_digest_that_imagetools_reads_back(version):
    digest = digest_from_metadata(DATA / version / "metadata.json")
    assert digest.startswith("sha256:") and len(digest) == 71
    index = parse_inspect(f"r@{digest}", json.loads(_read(version, "imagetools-format.json")))
    assert index.is_list and index.digest == digest
    assert index.platforms == ("linux/amd64", "linux/arm64")
    attestations = [v for v in index.variants if v.is_attestation]
    assert {a.attests for a in attestations} == {v.digest for v in index.images}  # provenance on both


@pytest.mark.parametrize("version", VERSIONS)
def test_the_raw_list_reads_as_the_formatted_one(version):
    raw = _read(version, "imagetools-raw.json").rstrip("\n").encode()
    formatted = parse_inspect("r", json.loads(_read(version, "imagetools-format.json")))
    index = parse_list("r", raw, "")
    assert index is not None and index.variants == formatted.variants


@pytest.mark.parametrize("version", VERSIONS)
def test_the_bake_metadata_file_has_a_digest_per_target(version):
    data = json.loads(_read(version, "bake-metadata.json"))
    assert data["rec"]["containerimage.digest"].startswith("sha256:")  # what run_bake reads, by bake target name


def _attrs(spec: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in spec.split(","))
