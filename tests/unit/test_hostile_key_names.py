"""A key is named exactly in its error, however it is spelled: quoted keys with dots, brackets,
spaces, quotes, unicode or nothing at all, and names pydantic uses for its own types and tags
("str", "list[str]", "function-after", "[key]"), at every depth of the file. Each is refused
with the file's own key path (exit 2), never with the name dropped or a parent's path."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from buildkit_farm.errors import ConfigError
from buildkit_farm.farmfile.load import load_config_text

CASES = Path(__file__).parent / "config_cases"
VALID: dict[str, Any] = {
    "builder": {"name": "farm"},
    "node": [
        {"name": "node1", "endpoint": "unix:///var/run/docker.sock", "platforms": ["linux/amd64"]},
        {
            "name": "node2",
            "endpoint": "tcp://node2.example:2376",
            "platforms": ["linux/arm64"],
            "tls": {"ca": str(CASES / "certs/ca.pem")},
        },
    ],
    "target": [
        {
            "name": "app",
            "context": str(CASES / "app"),
            "platforms": ["linux/amd64", "linux/arm64"],
            "tags": ["127.0.0.1:5000/app:latest"],
            "secrets": [{"id": "npm", "env": "NPM_TOKEN"}],
        }
    ],
    "bake": {"files": ["docker-bake.hcl"], "target": {"web": {"tags": ["127.0.0.1:5000/web:1"]}}},
}

# A key's name -> how the message spells it: bare when TOML allows it bare, else quoted.
NAMES = {
    # pydantic's words for types and union members
    "str": "str",
    "int": "int",
    "bool": "bool",
    "float": "float",
    "none": "none",
    "model": "model",
    "nullable": "nullable",
    "function-after": "function-after",
    "function-plain": "function-plain",
    "list[str]": '"list[str]"',
    "dict[str,any]": '"dict[str,any]"',
    "tuple[str, ...]": '"tuple[str, ...]"',
    "function-after[_check_name(), str]": '"function-after[_check_name(), str]"',
    "function-before[_non_empty_path(), lax-or-strict[lax=union[json-or-python[json=str,python=is-instance[Path]],"
    "is-instance[Path]],strict=is-instance[Path]]]": '"function-before[_non_empty_path(), lax-or-strict[lax=union'
    '[json-or-python[json=str,python=is-instance[Path]],is-instance[Path]],strict=is-instance[Path]]]"',
    "literal['docker-container']": "\"literal['docker-container']\"",
    "union[str,int]": '"union[str,int]"',
    "tagged-union[a,b]": '"tagged-union[a,b]"',
    "[key]": '"[key]"',
    # brackets, dots and spaces, as in a quoted key
    "a[0]": '"a[0]"',
    "[0]": '"[0]"',
    "name[1]": '"name[1]"',
    "a.b": '"a.b"',
    "builder.name": '"builder.name"',
    ".": '"."',
    "": '""',
    " ": '" "',
    "two words": '"two words"',
    " name": '" name"',
    # quotes and backslashes, escaped as TOML writes them
    'say "hi"': '"say \\"hi\\""',
    "back\\slash": '"back\\\\slash"',
    "it's": '"it\'s"',
    # unicode and control characters (escaped: a key cannot write to the terminal)
    "é": '"é"',
    "ключ": '"ключ"',
    "名前": '"名前"',
    "🙂": '"🙂"',
    "tab\there": '"tab\\there"',
    "esc\x1b[31m": '"esc\\u001b[31m"',
    "rtl\u202eexe": '"rtl\\u202eexe"',
    # bare keys that only look like something else
    "0": "0",
    "1.5": '"1.5"',
    "-": "-",
    "_": "_",
    "true": "true",
    "nodes": "nodes",
    "Name": "Name",
    "file": "file",
}

# Strict tables -> (where the key goes in VALID, the message's path to that table).
TABLES = {
    "top": ((), ""),
    "builder": (("builder",), "builder"),
    "node": (("node", 0), 'node "node1"'),
    "node_tls": (("node", 1, "tls"), 'node "node2".tls'),
    "target": (("target", 0), 'target "app"'),
    "target_secret": (("target", 0, "secrets", 0), 'target "app".secrets[0]'),
    "bake": (("bake",), "bake"),
    "bake_target": (("bake", "target", "web"), "bake.target.web"),
}


def _with_key(where: tuple[Any, ...], name: str, value: Any = 1) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    table: Any = doc
    for part in where:
        table = table[part]
    table[name] = value
    return doc


def _refused(doc: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config_text(tomli_w.dumps(doc), base=CASES)
    assert caught.value.exit_code == 2
    return caught.value


def _path(prefix: str, shown: str) -> str:
    return f"{prefix}.{shown}" if prefix else shown


def test_the_file_is_valid_without_the_key():
    load_config_text(tomli_w.dumps(VALID), base=CASES)


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_an_unknown_key_is_named_exactly_at_every_depth(table: str, name: str):
    where, prefix = TABLES[table]
    err = _refused(_with_key(where, name))
    path = _path(prefix, NAMES[name])
    assert any(issue.path == path and issue.message == "unknown key" for issue in err.issues), str(err)
    assert f": {path}: unknown key" in str(err)


# Tables whose keys are the user's, checked one by one: the error names the key itself.
KEYED = {
    "dockerfiles": (("target", 0, "dockerfiles"), 'target "app".dockerfiles', "x/Dockerfile", "platform"),
    "driver_opts": (("builder", "driver_opts"), "builder.driver_opts", "v", "is not an option of"),
    "node_driver_opts": (("node", 0, "driver_opts"), 'node "node1".driver_opts', "v", "is not an option of"),
    "args_not_string": (("target", 0, "args"), 'target "app".args', [1], "expected a string"),
    "labels_not_string": (("target", 0, "labels"), 'target "app".labels', {"a": 1}, "expected a string"),
}


@pytest.mark.parametrize("table", KEYED)
@pytest.mark.parametrize("name", NAMES, ids=repr)
def test_a_bad_key_or_value_in_a_keyed_table_is_named_exactly(table: str, name: str):
    where, prefix, value, message = KEYED[table]
    doc = copy.deepcopy(VALID)
    parent: Any = doc
    for part in where[:-1]:
        parent = parent[part]
    parent[where[-1]] = {name: value}
    err = _refused(doc)
    path = _path(prefix, NAMES[name])
    assert any(issue.path == path and message in issue.message for issue in err.issues), str(err)


def test_a_table_holding_a_key_named_like_the_key_marker_is_named_at_its_own_key():
    # pydantic writes "[key]" after a key whose name is wrong; here "[key]" is the file's own.
    doc = copy.deepcopy(VALID)
    doc["target"][0]["dockerfiles"] = {"linux/amd64": {"[key]": "linux/amd64"}}
    err = _refused(doc)
    assert [issue.path for issue in err.issues] == ['target "app".dockerfiles."linux/amd64"'], str(err)


@pytest.mark.parametrize(
    ("where", "required", "prefix"),
    [(("builder",), "name", "builder"), (("target", 0, "secrets", 0), "id", 'target "app".secrets[0]')],
)
def test_a_missing_key_is_named_beside_an_unknown_key_named_like_a_type(where, required, prefix):
    doc = _with_key(where, "str")
    table: Any = doc
    for part in where:
        table = table[part]
    del table[required]
    paths = {issue.path for issue in _refused(doc).issues}
    assert {f"{prefix}.{required}", f"{prefix}.str"} <= paths


ALLOWED = {
    "top": {"builder", "node", "target", "bake"},
    "builder": {"name", "driver", "driver_opts", "buildkitd_flags", "buildkitd_config", "buildkit_image"},
    "node_tls": {"ca", "cert", "key"},
    "target_secret": {"id", "env", "src"},
}


@settings(max_examples=int(os.environ.get("FARM_HYPOTHESIS_EXAMPLES", "150")), deadline=None)
@given(table=st.sampled_from(sorted(ALLOWED)), name=st.text(min_size=0, max_size=40))
def test_any_unknown_key_is_named_in_its_path(table: str, name: str):
    """Property: whatever its characters, an unknown key's issue path ends with that key, quoted
    as TOML quotes it (the table above pins the quoting); a key that looks like a credential or
    holds a NUL is refused at the same path with its own message."""
    from buildkit_farm.farmfile.words import key_name

    if name in ALLOWED[table]:
        return
    where, prefix = TABLES[table]
    err = _refused(_with_key(where, name))
    path = _path(prefix, key_name(name))
    assert any(issue.path == path for issue in err.issues), str(err)


@pytest.mark.parametrize("name", ["str", "a[0]", "", "list[str]", "a.b"], ids=repr)
def test_the_real_cli_names_the_key_and_exits_2(tmp_path: Path, name: str):
    file = tmp_path / "multiarch.toml"
    file.write_text(tomli_w.dumps(_with_key(("node", 0), name)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "buildkit_farm", "validate", "-f", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=CASES,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f'{file}: node "node1".{NAMES[name]}: unknown key' in done.stderr
