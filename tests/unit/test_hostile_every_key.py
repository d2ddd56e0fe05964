"""Wrong types at every key: each value of a rich, valid farm file is replaced in turn by values
of the wrong kind. Every result is a `ConfigError` naming that key (exit 2) or, where TOML's
type fits the key, an accepted file; never another exception."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from buildkit_farm.errors import ConfigError
from buildkit_farm.farmfile.load import load_config

CASES = Path(__file__).parent / "config_cases"
RICH: dict[str, Any] = {
    "builder": {
        "name": "farm",
        "driver_opts": {"network": "host"},
        "buildkitd_flags": "--allow-insecure-entitlement network.host",
        "buildkit_image": "moby/buildkit:v0.13.2",
        "buildkitd_config": {"registry": {"127.0.0.1:5000": {"http": True}}},
    },
    "node": [
        {"name": "node1", "endpoint": "unix:///var/run/docker.sock", "platforms": ["linux/amd64", "linux/386"]},
        {
            "name": "node2",
            "endpoint": "ssh://farm@127.0.0.1:2222",
            "platforms": ["aarch64", "armhf"],
            "buildkitd_flags": "--debug",
        },
        {
            "name": "node3",
            "endpoint": "tcp://node3.example:2376",
            "tls": {"ca": str(CASES / "certs/ca.pem"), "cert": str(CASES / "certs/cert.pem")},
            "platforms": ["linux/s390x"],
        },
    ],
    "target": [
        {
            "name": "app",
            "context": str(CASES / "app"),
            "platforms": ["linux/amd64", "linux/arm64", "linux/386"],
            "tags": ["127.0.0.1:5000/team/app:{version}"],
            "args": {"GREETING": "hi"},
            "labels": {"org.opencontainers.image.source": "https://example.com/team/app"},
            "provenance": False,
            "target": "release",
            "cache_from": ["type=registry,ref=127.0.0.1:5000/team/cache:app"],
            "secrets": [{"id": "npm", "env": "NPM_TOKEN"}],
            "allow_emulation": ["linux/386"],
        }
    ],
}
RICH["node"][2]["tls"]["key"] = str(CASES / "certs/key.pem")

# Values of a kind no farm file key takes where a string, a boolean or an array is expected.
WRONG = {
    "table": {"a": {"b": 1}},
    "array_of_arrays": [[1]],
    "date_time": datetime.datetime(2024, 1, 1, 0, 0),
    "float_nan": float("nan"),
    "nul_string": "x\x00y",
}
# Free-form tables: any key is theirs, and a nested table is buildkitd.toml's own business.
FREE = ("buildkitd_config",)


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(doc, list) and doc and isinstance(doc[0], dict):
        for index, value in enumerate(doc):
            yield from _leaves(value, (*path, index))
    else:
        yield path


LEAVES = [path for path in _leaves(RICH) if not set(path) & set(FREE)]


def test_the_rich_file_is_valid_and_has_every_kind_of_key(tmp_path: Path):
    file = tmp_path / "multiarch.toml"
    file.write_text(tomli_w.dumps(RICH))
    load_config(file)
    assert len(LEAVES) >= 25


@pytest.mark.parametrize("path", LEAVES, ids=lambda path: ".".join(map(str, path)))
def test_a_wrong_kind_at_any_key_is_refused_at_that_key(tmp_path: Path, path: tuple[Any, ...]):
    file = tmp_path / "multiarch.toml"
    for kind, value in WRONG.items():
        doc = copy.deepcopy(RICH)
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value
        file.write_text(tomli_w.dumps(doc))
        with pytest.raises(ConfigError) as caught:
            load_config(file)
        err = caught.value
        assert err.exit_code == 2
        key = str(path[-1])
        assert any(key in issue.path or key in issue.message for issue in err.issues), (kind, str(err))
        assert str(err).startswith(str(file)) and "\x00" not in str(err)
