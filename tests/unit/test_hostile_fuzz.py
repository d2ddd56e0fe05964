"""Fuzz: hundreds of generated hostile farm files are refused cleanly.

Each file is a valid farm file with one or more poisoned values: control characters, bidi
overrides, CSV breakers, quotes and line breaks in strict fields; credentials (tokens,
private keys, `user:password@` URLs) anywhere; wrong types; oversized arrays, keys and
nesting. Every one must be a `ConfigError` (exit 2, never another exception), printed by
the CLI's own error printer with no credential and no control character, in bounded time.
A seeded sample also goes through the real `farm validate` process.
"""

from __future__ import annotations

import datetime
import io
import os
import random
import subprocess
import sys
import time
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildkit_farm import cli
from buildkit_farm.errors import CREDENTIAL_TOKENS, URL_USERINFO, ConfigError
from buildkit_farm.farmfile.load import load_config

# (value, the part of it that must never be shown)
SECRETS = (
    ("ghp_Zq8sJ3kL0pXw9vB2nM4cR7tY1uI6oA5eD3fG", "Zq8sJ3kL0pXw9vB2nM4cR7tY"),
    ("AKIAQWERTYUIOPASDFGH", "QWERTYUIOPASDFGH"),
    ("glpat-abcdefghijklmnop1234", "abcdefghijklmnop1234"),
    ("xoxb-1234567890-abcdefghij", "1234567890-abcdefghij"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA"),
    ("https://deploy:hunter2@registry.example.com/", "hunter2"),
    ("tcp://admin:s3cr3t-pw@10.0.0.1:2376", "s3cr3t-pw"),
)
NASTY = (
    "\x1b[31m",
    "\x1b]0;pwned\x07",
    "\x9b2J",
    "\u202e",
    "\u2066",
    "\x00",
    "\x7f",
    "\r",
    "\n",
    '"',
    "'",
    ",",
    ",skip-tls-verify=true",
    "\t",
    "é",
    "٢٣٧٦",
    "${HOME}",
    "$(reboot)",
    "{NPM_TOKEN}",
)
# Keys where any value holding one of MUST_REFUSE is invalid.
STRICT = (
    ("builder", "name"),
    ("builder", "buildkit_image"),
    ("builder", "driver_opts", "network"),
    ("node", "name"),
    ("node", "endpoint"),
    ("node", "context"),
    ("node", "platforms", 0),
    ("node", "driver_opts", "memory"),
    ("target", "name"),
    ("target", "tags", 0),
    ("target", "sources", 0),
    ("target", "platforms", 0),
    ("target", "cache_from", 0),
    ("target", "cache_to", 0),
    ("target", "ssh", 0),
    ("target", "secrets", 0, "id"),
    ("target", "secrets", 0, "env"),
)
MUST_REFUSE = ("\x1b[31m", "\x9b2J", "\u202e", "\x00", "\n", '"')
# Anywhere: a credential is refused whatever the key.
ANYWHERE = (
    *STRICT,
    ("builder", "buildkitd_flags"),
    ("target", "args", "VERSION"),
    ("target", "labels", "org.opencontainers.image.source"),
    ("target", "target"),
    ("node", "driver_opts", "env.HTTP_PROXY"),
    ("node", "nodeselector", "zone"),
    ("extra",),
)
WRONG_TYPES: tuple[Any, ...] = (
    [[1]],
    {"a": {"b": 1}},
    datetime.datetime(2020, 1, 1, 0, 0),
    [{"x": 1}],
)


def base() -> dict[str, Any]:
    return {
        "builder": {"name": "farm", "driver_opts": {"network": "host"}, "buildkitd_flags": "--debug"},
        "node": [
            {
                "name": "node1",
                "endpoint": "unix:///var/run/docker.sock",
                "platforms": ["linux/amd64"],
                "driver_opts": {"memory": "1g"},
            }
        ],
        "target": [
            {
                "name": "app",
                "context": ".",
                "platforms": ["linux/amd64"],
                "tags": ["127.0.0.1:5000/app:latest"],
                "cache_from": ["type=registry,ref=127.0.0.1:5000/app:cache"],
                "args": {"VERSION": "1"},
                "secrets": [{"id": "npm", "env": "NPM_TOKEN"}],
            }
        ],
    }


def put(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    """Set doc[path] = value; a table or array on the way is created; a node/target is item 0."""
    where: Any = doc
    parts = list(path)
    if parts[0] in ("node", "target"):
        parts.insert(1, 0)
    for part, nxt in zip(parts, parts[1:]):
        if isinstance(where, list):
            where = where[part]
            continue
        if part not in where or not isinstance(where[part], (dict, list)):
            where[part] = [] if isinstance(nxt, int) else {}
        where = where[part]
        if isinstance(where, list) and isinstance(nxt, int) and not where:
            where.append({} if len(parts) > parts.index(part) + 2 else "")
    last = parts[-1]
    if isinstance(where, list):
        where[last] = value
    else:
        where[last] = value


def hostile_text(draw, must_refuse: bool) -> str:
    pieces = draw(st.lists(st.sampled_from(NASTY), min_size=0, max_size=4))
    if must_refuse:
        pieces.append(draw(st.sampled_from(MUST_REFUSE)))
    pieces = draw(st.permutations(pieces)) if pieces else []
    stem = draw(st.sampled_from(("app", "node2", "127.0.0.1:5000/app", "linux/arm64", "type=registry,ref=r", "x")))
    return stem + "".join(pieces)


@st.composite
def hostile_docs(draw) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A farm file with 1-3 poisoned values; returns it with the credentials it holds."""
    doc = base()
    planted: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(("strict", "credential", "key", "type", "size")))
        if kind == "strict":
            put(doc, draw(st.sampled_from(STRICT)), hostile_text(draw, must_refuse=True))
        elif kind == "credential":
            secret, hidden = draw(st.sampled_from(SECRETS))
            planted.append(hidden)
            value = hostile_text(draw, must_refuse=False) + secret + draw(st.sampled_from(("", "\x1b[0m", ",x=y")))
            put(doc, draw(st.sampled_from(ANYWHERE)), value)
        elif kind == "key":  # a hostile key: unknown where it stands, or a credential as an arg's name
            secret, hidden = draw(st.sampled_from(SECRETS))
            planted.append(hidden)
            key = hostile_text(draw, must_refuse=False) + secret
            put(doc, draw(st.sampled_from((("builder", key), ("target", "args", key), ("node", key), (key,)))), "1")
        elif kind == "type":
            put(doc, draw(st.sampled_from(STRICT)), draw(st.sampled_from(WRONG_TYPES)))
        else:
            size = draw(st.sampled_from(("items", "key", "depth")))
            if size == "items":
                put(doc, ("target", "tags"), ["127.0.0.1:5000/app:x"] * draw(st.integers(1001, 3000)))
            elif size == "key":
                put(doc, ("target", "args", "K" * draw(st.integers(257, 5000))), "v")
            else:
                deep: dict[str, Any] = {"x": 1}
                for _ in range(draw(st.integers(17, 60))):
                    deep = {"d": deep}
                put(doc, ("builder", "driver_opts"), deep)
    return doc, tuple(planted)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    (path / "Dockerfile").write_text("FROM scratch\n")
    return path


def printed(err: ConfigError) -> str:
    """What the CLI's one error printer shows for `err`."""
    buffer = io.StringIO()
    with redirect_stderr(buffer):
        cli._report(err)
    return buffer.getvalue()


def assert_clean(output: str, planted: tuple[str, ...]) -> None:
    assert "Traceback" not in output
    for line in output.splitlines():
        assert line.isprintable(), repr(line)
    assert not CREDENTIAL_TOKENS.search(output), output
    assert not URL_USERINFO.search(output), output
    for secret in planted:
        assert secret not in output, (secret, output)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(case=hostile_docs())
def test_generated_hostile_files_are_refused_cleanly(folder, case):
    doc, planted = case
    file = folder / "multiarch.toml"
    file.write_text(tomli_w.dumps(doc), encoding="utf-8")
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert time.monotonic() - t0 < 2.0
    err = caught.value
    assert err.exit_code == 2 and err.issues
    assert_clean(printed(err), planted)


def test_a_seeded_sample_through_the_real_cli(folder):
    rng = random.Random(14)
    env = {**os.environ, "NO_COLOR": "1"}
    for index in range(5):
        doc = base()
        secret, hidden = rng.choice(SECRETS)
        put(doc, rng.choice(ANYWHERE), rng.choice(NASTY) + secret)
        put(doc, rng.choice(STRICT), "x" + rng.choice(MUST_REFUSE) + rng.choice(NASTY))
        file = folder / f"cli-{index}.toml"
        file.write_text(tomli_w.dumps(doc), encoding="utf-8")
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "buildkit_farm", "validate", "-f", str(file)],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert time.monotonic() - t0 < 10  # a process start included, on a loaded machine
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert_clean(proc.stderr, (hidden,))
