"""Property: on any TOML document (or any text) the loader returns a FarmConfig or raises ConfigError.

Nothing else may escape: no pydantic ValidationError, no KeyError, no OSError from odd paths.
"""

from __future__ import annotations

import datetime as dt
import os
import string

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildkit_farm.errors import ConfigError
from buildkit_farm.farmfile.load import load_config
from buildkit_farm.farmfile.model import FarmConfig

SETTINGS = settings(
    max_examples=int(os.environ.get("FARM_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

words = st.sampled_from(
    [
        "farm",
        "default",
        "node1",
        "node2",
        "app",
        "linux/amd64",
        "aarch64",
        "armv9",
        "windows/amd64",
        "unix:///var/run/docker.sock",
        "ssh://root@h",
        "tcp://h:2376",
        "tcp://h",
        "http://x",
        "",
        "docker-container",
        "remote",
        "kubernetes",
        "r/app:{version}",
        "R/App",
        "Dockerfile",
        ".",
        "..",
        "/",
        "\x00",
        "a" * 300,
        "{",
        "password",
        "token",
        "network",
        "host",
        "image",
        "x" * 5000,
    ]
)
scalars = st.one_of(
    words,
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    st.dates(),
)
keys = st.one_of(
    st.sampled_from(
        [
            "builder",
            "node",
            "target",
            "name",
            "driver",
            "driver_opts",
            "buildkitd_flags",
            "buildkitd_config",
            "buildkit_image",
            "endpoint",
            "context",
            "platforms",
            "tls",
            "ca",
            "cert",
            "key",
            "nodeselector",
            "replicas",
            "dockerfile",
            "dockerfiles",
            "sources",
            "tags",
            "variant_tags",
            "args",
            "labels",
            "target",
            "cache_from",
            "cache_to",
            "provenance",
            "sbom",
            "secrets",
            "id",
            "env",
            "src",
            "ssh",
            "allow_emulation",
            "password",
            "api_key",
        ]
    ),
    st.text(alphabet=string.ascii_letters + "_-./ ", min_size=1, max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
tables = st.dictionaries(keys, values, max_size=8)


def farmish():
    """Documents shaped like farm files, so that the deeper rules run too."""
    return st.fixed_dictionaries(
        {},
        optional={
            "builder": st.one_of(tables, values),
            "node": st.one_of(st.lists(tables, max_size=4), values),
            "target": st.one_of(st.lists(tables, max_size=3), values),
        },
    )


def check(path) -> None:
    try:
        result = load_config(path)
    except ConfigError as err:
        assert err.issues, "a ConfigError must carry at least one issue"
        assert err.exit_code == 2
        for issue in err.issues:
            assert isinstance(issue.path, str) and issue.message
    else:
        assert isinstance(result, FarmConfig)
        result.node_settings()
        result.summary()


@SETTINGS
@given(doc=st.one_of(tables, farmish()))
def test_any_toml_document_gives_a_config_or_a_config_error(doc, tmp_path):
    path = tmp_path / "multiarch.toml"
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    check(path)


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_text_gives_a_config_or_a_config_error(text, tmp_path):
    path = tmp_path / "multiarch.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path)


@SETTINGS
@given(data=st.binary(max_size=200))
def test_any_bytes_give_a_config_or_a_config_error(data, tmp_path):
    path = tmp_path / "multiarch.toml"
    path.write_bytes(data)
    check(path)


VALID = {
    "builder": {"name": "farm", "driver_opts": {"network": "host"}, "buildkitd_config": {"debug": True}},
    "node": [
        {"name": "node1", "endpoint": "unix:///var/run/docker.sock", "platforms": ["linux/amd64"]},
        {"name": "node2", "endpoint": "ssh://farm@127.0.0.1:2222", "platforms": ["aarch64", "armhf"]},
        {"name": "edge", "context": "my-context"},
    ],
    "target": [
        {
            "name": "app",
            "context": "app",
            "platforms": ["linux/amd64", "linux/arm64"],
            "tags": ["r/app:{version}"],
            "args": {"A": "b"},
            "secrets": [{"id": "npm", "env": "NPM_TOKEN"}],
        },
        {"name": "win", "sources": ["r/app:windows-amd64"], "tags": ["r/win:1"]},
    ],
}


def _leaves(doc, prefix=()):
    """Every location in a document: (path, value)."""
    yield prefix, doc
    if isinstance(doc, dict):
        for key, item in doc.items():
            yield from _leaves(item, prefix + (key,))
    elif isinstance(doc, list):
        for index, item in enumerate(doc):
            yield from _leaves(item, prefix + (index,))


def _replace(doc, path, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _replace(doc[head], rest, value)}
    copy = list(doc)
    copy[head] = _replace(doc[head], rest, value)
    return copy


@SETTINGS
@given(data=st.data())
def test_a_valid_file_with_one_thing_changed_gives_a_config_or_a_config_error(data, tmp_path):
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    locations = [path for path, _ in _leaves(VALID) if path]
    doc = VALID
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(locations))
        try:
            doc = _replace(doc, path, data.draw(values))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this location
    file = tmp_path / "multiarch.toml"
    file.write_text(tomli_w.dumps(doc), encoding="utf-8")
    check(file)


def test_the_unchanged_document_is_valid(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "multiarch.toml").write_text(tomli_w.dumps(VALID), encoding="utf-8")
    config = load_config(tmp_path / "multiarch.toml")
    assert [t.name for t in config.targets] == ["app", "win"]
