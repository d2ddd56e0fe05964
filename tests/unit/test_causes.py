"""Common setup mistakes get their real cause: engine and push errors (texts recorded from
docker 28 / BuildKit 0.13 on the lab), and `farm validate`'s warning before anything runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from buildkit_farm.causes import engine_hint, is_loopback_registry, push_hint, refused_push, transient_push
from buildkit_farm.farmfile.load import load_config_text
from buildkit_farm.farmfile.pitfalls import warnings

ENGINE = [
    # docker -H ssh://... with a known_hosts lacking the key (StrictHostKeyChecking yes)
    (
        "error during connect: ... ssh: No ED25519 host key is known for [127.0.0.1]:2222 and you have requested "
        "strict checking.\nHost key verification failed.",
        "does not know the host key",
    ),
    ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@", "differs from the one in ~/.ssh/known_hosts"),
    ("farm@127.0.0.1: Permission denied (publickey,password).", "ssh refused the key"),
    # docker -H tcp://127.0.0.1:2376 --tlsverify --tlscacert <another CA> (seen on the lab)
    (
        'error during connect: Get "https://127.0.0.1:2376/v1.50/version": tls: failed to verify certificate: '
        "x509: certificate signed by unknown authority",
        "not signed by the node's tls.ca",
    ),
    ('Get "https://127.0.0.1:2376/v1.50/version": remote error: tls: certificate required', "tls.cert and tls.key"),
    ("Error response from daemon: Client sent an HTTP request to an HTTPS server.", "the engine speaks TLS"),
    ("Cannot connect to the Docker daemon at unix:///nope.sock. Is the docker daemon running?", "socket path"),
]


@pytest.mark.parametrize(("detail", "expected"), ENGINE)
def test_engine_hint_names_the_real_cause(detail, expected):
    assert expected in (engine_hint(detail, "ssh://farm@127.0.0.1:2222") or "")


LOOPBACK_REFUSED = (
    'ERROR: failed to solve: failed to push 127.0.0.1:5000/app:latest: failed to do request: Head "http://127.0.0.1:'
    '5000/v2/app/blobs/sha256:0123": dial tcp 127.0.0.1:5000: connect: connection refused'
)


def test_push_to_a_loopback_registry_from_an_isolated_buildkit():
    hint = push_hint(LOOPBACK_REFUSED, driver="docker-container", host_network=False) or ""
    assert "its own loopback" in hint and 'network = "host"' in hint


def test_with_host_network_a_refused_loopback_registry_is_really_down():
    assert "did not answer" in (push_hint(LOOPBACK_REFUSED, host_network=True) or "")


def test_push_to_a_plain_http_registry():
    detail = (
        'failed to do request: Head "https://reg.example:5000/v2/app/blobs/sha256:01": '
        "http: server gave HTTP response to HTTPS client"
    )
    hint = push_hint(detail) or ""
    assert '"reg.example:5000" = { http = true }' in hint


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ("x509: certificate signed by unknown authority", "does not trust the registry's certificate"),
        ("unexpected status from PUT request: 401 Unauthorized", "docker login"),
        ("something else entirely", None),
    ],
)
def test_other_push_failures(detail, expected):
    hint = push_hint(detail)
    assert (expected in (hint or "")) if expected else hint is None


@pytest.mark.parametrize(
    ("ref", "loopback"),
    [
        ("127.0.0.1:5000/app", True),
        ("localhost:5000/team/app:1", True),
        ("LOCALHOST/app", True),
        ("[::1]:5000/app", True),
        ("127.0.0.1.example.com/app", False),
        ("reg.example:5000/app", False),
        ("app:latest", False),
    ],
)
def test_is_loopback_registry(ref, loopback):
    assert is_loopback_registry(ref) is loopback


FARM = """
[builder]
name = "farm"
{opts}
[[node]]
name = "node1"
endpoint = "unix:///var/run/docker.sock"
platforms = ["linux/amd64"]
[[target]]
name = "app"
context = "."
dockerfile = "Dockerfile"
platforms = ["linux/amd64"]
tags = ["{tag}"]
"""


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


@pytest.mark.parametrize(
    ("opts", "tag", "warned"),
    [
        ("", "127.0.0.1:5000/app", True),
        ("", "localhost:5000/app", True),
        ('driver_opts = { network = "host" }', "127.0.0.1:5000/app", False),
        ("", "registry.example.com/app", False),
        ('driver = "remote"', "127.0.0.1:5000/app", False),
    ],
)
def test_validate_warns_about_a_loopback_registry(folder, opts, tag, warned):
    text = FARM.format(opts=opts, tag=tag)
    if "remote" in opts:
        text = text.replace("unix:///var/run/docker.sock", "tcp://127.0.0.1:1234")
    found = warnings(load_config_text(text, base=folder))
    assert bool(found) is warned
    if warned:
        assert 'target "app"' in found[0] and 'network = "host"' in found[0] and "node1" in found[0]


def test_farm_validate_prints_the_warning_and_exits_0(folder):
    (folder / "farm.toml").write_text(FARM.format(opts="", tag="127.0.0.1:5000/app"))
    run = [sys.executable, "-m", "buildkit_farm", "validate", "-f", str(folder / "farm.toml")]
    env = {**os.environ, "NO_COLOR": "1"}
    text = subprocess.run(run, capture_output=True, text=True, env=env, timeout=60)
    assert text.returncode == 0 and 'warning: target "app" pushes to 127.0.0.1:5000' in text.stderr
    as_json = subprocess.run([*run, "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert as_json.returncode == 0
    assert "its own" in json.loads(as_json.stdout)["result"]["warnings"][0]


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        (
            "failed to push 127.0.0.1:5001/team/app: unexpected status from HEAD request to "
            "http://127.0.0.1:5001/v2/team/app/blobs/sha256:78: 401 Unauthorized",
            ("127.0.0.1:5001", "127.0.0.1:5001/team/app", True),
        ),
        (
            "failed to push ghcr.io/org/app:1.0: failed to authorize: failed to fetch anonymous token: "
            "unexpected status: 401 Unauthorized",
            ("ghcr.io", "ghcr.io/org/app", True),
        ),
        (
            "failed to push someone/app:latest: server message: insufficient_scope: authorization failed",
            ("docker.io", "someone/app", False),
        ),
        (
            "unexpected status from PUT request to https://reg.example/v2/team/app/manifests/sha256:1: 403 Forbidden",
            ("reg.example", "reg.example/team/app", False),
        ),
        ("unexpected status from PUT request: 401 Unauthorized", None),  # no repository to name
        ("failed to push 127.0.0.1:5000/app: connection refused", None),
    ],
)
def test_a_refused_push_names_registry_and_repository(detail, expected):
    assert refused_push(detail) == expected


def test_a_push_wanting_credentials_says_which_login_to_run():
    detail = "failed to push 127.0.0.1:5001/team/app: unexpected status: 401 Unauthorized"
    assert push_hint(detail) == (
        "registry 127.0.0.1:5001 wants credentials to push 127.0.0.1:5001/team/app: "
        "run `docker login 127.0.0.1:5001` first"
    )


def test_a_reset_tls_connection_is_hinted_as_a_refused_client_certificate():
    detail = 'error during connect: Get "https://127.0.0.1:2376/v1.50/info": write: connection reset by peer'
    assert "may refuse the client certificate" in (engine_hint(detail, "tcp://127.0.0.1:2376") or "")
    assert engine_hint(detail, "ssh://farm@127.0.0.1:2222") is None  # not a TLS endpoint: no guess


_PUSH = 'failed to push 127.0.0.1:5000/app:1: failed commit on ref "manifest-sha256:6bcc": '
_PUT = "unexpected status from PUT request to http://127.0.0.1:5000/v2/app/manifests/sha256:6bcc: "


@pytest.mark.parametrize(
    "detail, transient",
    [
        # the lab's own case: distribution got a manifest whose bytes did not match its digest
        (_PUSH + _PUT + "400 Bad Request: digest invalid: provided digest did not match uploaded content", True),
        # what containerd prints for it: the registry's body is dropped
        (_PUSH + _PUT + "400 Bad Request", True),
        (_PUSH + "unexpected commit digest sha256:e581, expected sha256:5fc8: failed precondition", True),
        (_PUSH + _PUT + "503 Service Unavailable", True),
        (_PUSH + _PUT + "502 Bad Gateway", True),
        (_PUSH + _PUT + "429 Too Many Requests", True),
        ("failed to push r/app:1: write tcp 127.0.0.1:4->127.0.0.1:5000: write: broken pipe", True),
        ("failed to push r/app:1: read tcp 127.0.0.1:4->127.0.0.1:5000: read: connection reset by peer", True),
        ("#21 pushing layers\n#21 ERROR: unexpected EOF", True),
        # a refusal or a wrong address fails again the same way
        (_PUSH + _PUT + "401 Unauthorized", False),
        (_PUSH + "insufficient_scope: authorization failed", False),
        (_PUSH + "denied: requested access to the resource is denied", False),
        (_PUSH + "tls: failed to verify certificate: x509: certificate signed by unknown authority", False),
        ("failed to push r/app:1: dial tcp 127.0.0.1:5999: connect: connection refused", False),
        ("failed to push reg.example:5000/app:1: dial tcp: lookup reg.example: no such host", False),
        (_PUSH + _PUT + "400 Bad Request: manifest invalid: manifest invalid", False),
        (
            "failed to push r/app:1: unexpected status from HEAD request to http://r/v2/app/manifests/x: 400 Bad Request",
            False,
        ),
        # not a push at all: a RUN that failed, even with the same words in its log
        (
            'process "/bin/sh -c curl -f https://x" did not complete successfully: exit code: 56 (connection reset by peer)',
            False,
        ),
        ("", False),
    ],
)
def test_transient_push(detail, transient):
    assert transient_push(detail) is transient
