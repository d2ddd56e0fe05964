"""Bake targets as farm targets (pure): a recorded `docker buildx bake --print` answer in,
[[target]] tables out, with what farm refuses named."""

from __future__ import annotations

import json
from pathlib import Path

from buildkit_farm.farmfile import bake
from buildkit_farm.farmfile.model import BakeConfig

# What buildx 0.13.1 printed for a file with a variable, inherits and a matrix.
PRINTED = {
    "group": {"default": {"targets": ["app", "tool"]}, "tool": {"targets": ["tool-a", "tool-b"]}},
    "target": {
        "app": {
            "attest": ["type=sbom"],
            "context": "app",
            "dockerfile": "Dockerfile",
            "args": {"A": "1", "UNSET": None},
            "tags": ["127.0.0.1:5000/x/app:1.0"],
            "cache-from": ["type=registry,ref=r/c"],
            "secret": ["id=npm,env=NPM", "id=key,src=key.txt"],
            "platforms": ["linux/amd64", "linux/arm64"],
            "output": ["type=docker"],
        },
        "tool-a": {"context": ".", "dockerfile": "Dockerfile.a", "tags": ["r/tool-a:latest"]},
    },
}


def _bake(**kwargs) -> BakeConfig:
    return BakeConfig.model_validate({"files": ["docker-bake.hcl"], **kwargs}, context={"base": "/repo"})


def test_resolved_bake_targets_become_target_tables():
    raws, issues = bake.to_targets(PRINTED, _bake())
    assert issues == []
    tables = dict(raws)
    app = tables["app"]
    assert app["context"] == "app" and app["dockerfile"] == str(Path("app/Dockerfile"))  # relative to the context
    assert app["platforms"] == ["linux/amd64", "linux/arm64"] and app["tags"] == ["127.0.0.1:5000/x/app:1.0"]
    assert app["args"] == {"A": "1"}  # an unset bake arg is left out
    assert app["secrets"] == [{"id": "npm", "env": "NPM"}, {"id": "key", "src": "key.txt"}]
    assert app["cache_from"] == ["type=registry,ref=r/c"] and app["sbom"] is True
    assert "output" not in app  # farm pushes by digest and moves the tags itself
    assert tables["tool-a"]["dockerfile"] == "Dockerfile.a"


def test_farm_only_settings_go_by_the_resolved_name():
    settings = {"tool-a": {"allow_emulation": ["linux/s390x"], "variant_tags": True, "tags": ["r/other:1"]}}
    raws, issues = bake.to_targets(PRINTED, _bake(target=settings))
    assert issues == []
    tool = dict(raws)["tool-a"]
    assert tool["allow_emulation"] == ["linux/s390x"] and tool["variant_tags"] is True and tool["tags"] == ["r/other:1"]


def test_settings_for_a_target_bake_did_not_resolve_are_named():
    _, issues = bake.to_targets(PRINTED, _bake(target={"tool": {"variant_tags": True}}))
    (issue,) = issues
    assert issue.path == 'bake.target."tool"' and "app, tool-a" in issue.hint


def test_what_farm_cannot_build_from_is_refused():
    printed = {
        "target": {
            "inline": {"dockerfile-inline": "FROM x", "context": "."},
            "remote": {"context": "https://github.com/x/y.git"},
        }
    }
    raws, issues = bake.to_targets(printed, _bake())
    assert [name for name, _ in raws] == ["inline"]
    assert {i.path for i in issues} == {'bake target "inline".dockerfile-inline', 'bake target "remote".context'}


def test_a_bake_error_becomes_one_issue_with_buildx_own_message():
    issue = bake._print_issue("#1 [internal] load local bake definitions\nERROR: failed to find target nope\n", _bake())
    assert issue.path == "bake.targets" and issue.message == "failed to find target nope"
    assert '["default"]' in issue.hint


def test_the_monorepo_example_takes_its_targets_from_its_bake_file_on_the_lab_farm():
    from buildkit_farm.farmfile.load import load_config

    root = Path(__file__).resolve().parents[2]
    example = load_config(root / "examples" / "monorepo" / "farm.toml")
    lab = load_config(root / "lab" / "farm.toml")
    assert example.targets == () and example.bake is not None
    assert [p.name for p in example.bake.files] == ["docker-bake.hcl"] and example.bake.files[0].is_file()
    assert example.builder.name == lab.builder.name and example.node_settings() == lab.node_settings()
    text = example.bake.files[0].read_text()
    assert "variable" in text and "inherits" in text and "matrix" in text
    assert (root / "examples" / "monorepo" / "README.md").read_text().strip()


def test_loading_starts_no_process_and_expand_adds_frozen_specs_with_their_origin(tmp_path, monkeypatch):
    """Resolving bake files is the loader's caller's step: loading runs nothing; `expand` is pure
    (the printed JSON in) and adds each bake target to the desired state as a TargetSpec."""
    import subprocess

    from farms import ONE_NODE

    from buildkit_farm.farmfile.load import load_config_text

    for name in ("app", "tool"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM 127.0.0.1:5000/base\n")
    (tmp_path / "docker-bake.hcl").write_text('target "app" {}\n')

    def refuse(*args, **kwargs):
        raise AssertionError("a process started")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    config = load_config_text(ONE_NODE + '[bake]\nfiles = ["docker-bake.hcl"]\n', base=tmp_path)
    assert config.desired.targets == ()
    args = bake.print_args(config.bake, base=tmp_path)
    assert args == ["buildx", "bake", "--print", "--file", str(tmp_path / "docker-bake.hcl"), "default"]
    printed = {
        "target": {
            "app": {"context": "app", "dockerfile": "Dockerfile", "platforms": ["linux/amd64"], "tags": ["r/app:1"]}
        }
    }
    expanded = bake.expand(config, bake.read_printed(0, json.dumps(printed), "", config.bake, base=tmp_path))
    (spec,) = expanded.config.desired.targets
    assert spec.name == "app" and spec.platforms == ("linux/amd64",) and spec.pools == (("linux/amd64", ("node1",)),)
    assert spec.dockerfile == tmp_path / "app" / "Dockerfile" and spec.origin == 'docker-bake.hcl target "app"'
    assert config.desired.targets == ()  # the loaded value is frozen: expand made a new one
