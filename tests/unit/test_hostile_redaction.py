"""Credentials never reach the user, in any of the shapes registries, proxies, buildx and CI
print them: `Authorization: Basic …` and `Bearer …` (headers, lone, JSON), a registry's JWT,
`user:password@` in URLs (a password with '@' in it too), `docker login -p`, `--password`,
`REGISTRY_PASSWORD=…` from the environment, a docker config's `"auth"`. Checked in each place a
text can get out: messages (errors.redact / shown), what the process door keeps of docker's
output (docker.mask, DockerFailed, bake's progress lines), printed command lines (--dry-run),
and every --json document."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buildkit_farm import docker
from buildkit_farm.builds import command
from buildkit_farm.docker import DockerFailed, DockerPaths
from buildkit_farm.envelope import document
from buildkit_farm.errors import UsageError, redact, redacted, shown

SECRET = "s3cr3tVALUE42"
B64 = "dXNlcjpzM2NyM3RWQUxVRTQy"  # base64 of user:s3cr3tVALUE42
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJhY2Nlc3MiOlt7InR5cGUiOiJyZXBvc2l0b3J5In1dfQ.c2lnbmF0dXJlLXBhcnQ"

# (what a log or an error says, the secret in it that must not come out)
HIDDEN = {
    "header_basic": (f"Authorization: Basic {B64}", B64),
    "header_bearer": (f"Authorization: Bearer {SECRET}", SECRET),
    "header_lowercase": (f"authorization: bearer {SECRET}", SECRET),
    "header_token_scheme": (f"Authorization: token {SECRET}", SECRET),
    "header_no_scheme": (f"Authorization: {SECRET}", SECRET),
    "header_in_json": (f'{{"Authorization": "Bearer {SECRET}"}}', SECRET),
    "header_curl_flag": (f"curl -H 'Authorization: Bearer {SECRET}' https://r.example/v2/", SECRET),
    "proxy_authorization": (f"Proxy-Authorization: Basic {B64}", B64),
    "x_registry_auth": (f"X-Registry-Auth: {B64}", B64),
    "lone_bearer": (f"retrying with Bearer {SECRET} after 401", SECRET),
    "lone_basic": (f"using Basic {B64}", B64),
    "registry_jwt": (f"token response: {JWT}", JWT),
    "url_password": (f"failed to fetch https://ci:{SECRET}@registry.example.com/v2/", SECRET),
    "url_password_with_at": (f"https://ci:p@ss{SECRET}@registry.example.com/v2/", SECRET),
    "url_password_in_git": (f"fatal: unable to access 'https://oauth2:{SECRET}@git.example.com/x.git/'", SECRET),
    "bare_userinfo": (f"ci:{SECRET}@registry.example.com/app:1", SECRET),
    "docker_login_p": (f"docker login -u ci -p {SECRET} registry.example.com", SECRET),
    "password_flag": (f"docker login --username ci --password {SECRET} r.example", SECRET),
    "password_flag_equals": (f"docker login --password={SECRET} r.example", SECRET),
    "token_flag": (f"regctl registry login --token {SECRET}", SECRET),
    "env_registry_password": (f"REGISTRY_PASSWORD={SECRET} docker buildx bake", SECRET),
    "env_ci_password": (f"CI_REGISTRY_PASSWORD={SECRET}", SECRET),
    "env_docker_password": (f"env: DOCKER_PASSWORD={SECRET} HOME=/root", SECRET),
    "env_token_lowercase": (f"registry_token={SECRET}", SECRET),
    "query_password": (f"https://r.example/token?account=ci&password={SECRET}&scope=x", SECRET),
    "query_access_token": (f"GET /v2/?access_token={SECRET} HTTP/1.1", SECRET),
    "docker_config_auth": (f'{{"auths": {{"r.example": {{"auth": "{B64}"}}}}}}', B64),
    "docker_config_identitytoken": (f'{{"identitytoken": "{SECRET}"}}', SECRET),
    "json_password": (f'{{"username": "ci", "password": "{SECRET}"}}', SECRET),
    "yaml_password": (f"password: {SECRET}", SECRET),
    "github_token": ("token ghp_" + "A1b2" * 9, "ghp_" + "A1b2" * 9),
}

# Texts farm prints on purpose that hold no secret: each stays as it is.
KEPT = [
    "Basic authentication is required",
    'WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
    "unauthorized: authentication required",
    "org.opencontainers.image.authors=team@example.com",
    "--secret id=npm,env=NPM_TOKEN",
    "docker login --password-stdin registry.example.com",
    "docker run -p 8080:80 app",
    "ssh://farm@127.0.0.1:2222",
    "reg:5000/app:1@sha256:" + "a" * 64,
    "EMPTY_TOKEN=",
    "the token endpoint answered 401",
    "keyboard-layout=us authority=ca",
    "--build-arg NPM_TOKEN=REDACTED",
]


@pytest.mark.parametrize("name", HIDDEN)
def test_a_credential_never_survives_redact(name):
    text, secret = HIDDEN[name]
    out = redact(text)
    assert secret not in out and "***" in out, out
    assert secret not in shown(text)


@pytest.mark.parametrize("text", KEPT)
def test_what_holds_no_secret_is_kept_as_it_is(text):
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
        ("Authorization: Bearer abcdef0123456789", "Authorization: Bearer ***"),
        ("https://ci:p@ss@host/v2/", "https://***@host/v2/"),
        ("REGISTRY_PASSWORD=x DEBUG=1", "REGISTRY_PASSWORD=*** DEBUG=1"),
        ('"auth": "dXNlcjpwYXNz"', '"auth": "***"'),
        ("docker login -u ci -p pw r.example", "docker login -u ci -p *** r.example"),
    ],
)
def test_redact_keeps_what_says_which_credential(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("name", HIDDEN)
def test_the_process_door_masks_every_shape_and_keeps_the_user(name):
    text, secret = HIDDEN[name]
    assert secret not in docker.mask(text)
    assert docker.mask(f"ssh://farm:{SECRET}@10.0.0.1:22") == "ssh://farm:***@10.0.0.1:22"


def _stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def test_a_docker_failure_keeps_no_header_or_password(tmp_path, monkeypatch):
    said = "; ".join(text for text, _ in HIDDEN.values()).replace("'", "")
    _stand_in(tmp_path, monkeypatch, f"echo '{said}' >&2; exit 1")
    with pytest.raises(DockerFailed) as caught:
        docker.run(DockerPaths.resolve(None), ["login", "-u", "ci", "-p", SECRET, "r.example"])
    err = caught.value
    everything = " ".join([str(err), err.detail, err.stderr, err.stdout, " ".join(err.command)])
    for name, (_, secret) in HIDDEN.items():
        assert secret not in everything, name


def test_bake_progress_lines_are_masked_as_they_come(tmp_path, monkeypatch):
    lines = [f"#7 0.{i} {text}" for i, (text, _) in enumerate(HIDDEN.values())]
    script = "\n".join(f"printf '%s\\n' {_sh(line)} >&2" for line in lines)
    _stand_in(tmp_path, monkeypatch, script)
    proc = docker.start_bake(["docker", "buildx", "bake"], tty=False)
    got = list(proc.lines())
    assert proc.wait() == 0 and len(got) == len(lines)
    for name, (_, secret) in HIDDEN.items():
        assert not any(secret in line for line in got), name


def _sh(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


@pytest.mark.parametrize("name", ["header_bearer", "url_password", "env_registry_password", "lone_basic"])
def test_a_printed_command_line_hides_it(name):
    text, secret = HIDDEN[name]
    argv = ["docker", "buildx", "build", "--build-arg", f"EXTRA={text}", "--label", f"note={text}", "."]
    assert secret not in command.redact(argv)


def test_a_json_document_hides_values_under_credential_names_and_in_text():
    result = {
        "args": {"DB_PASSWORD": "plainword", "REGISTRY_TOKEN": "tok123", "VERSION": "1.2.3", "api_key": "k1"},
        "log": [text for text, _ in HIDDEN.values()],
    }
    text = document("build", result, error=UsageError(f"push refused: Authorization: Bearer {SECRET}"))
    for secret in ("plainword", "tok123", "k1", *(s for _, s in HIDDEN.values())):
        assert secret not in text, secret
    assert '"VERSION": "1.2.3"' in text
    assert redacted({"password": "REDACTED"}) == {"password": "REDACTED"}


def test_registry_password_from_the_environment_stays_out_of_a_dry_run(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM 127.0.0.1:5000/base:latest\nARG REGISTRY_PASSWORD\nRUN true\n")
    farm_file = tmp_path / "multiarch.toml"
    farm_file.write_text(
        '[builder]\nname = "redact"\n[[node]]\nname = "node1"\nendpoint = "unix:///nonexistent/docker.sock"\n'
        'platforms = ["linux/amd64"]\n[[target]]\nname = "app"\ncontext = "app"\nplatforms = ["linux/amd64"]\n'
        'tags = ["127.0.0.1:5000/redact/app:1"]\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FARM_FILE", "NO_COLOR")}
    env |= {"REGISTRY_PASSWORD": SECRET, "HTTP_AUTH": f"Bearer {JWT}"}
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "buildkit_farm", "build", "-f", str(farm_file), "--dry-run", *extra]
            + ["--build-arg", "REGISTRY_PASSWORD", "--build-arg", "HTTP_AUTH"]
            + ["--build-arg", f"MIRROR=https://ci:{SECRET}@mirror.example.com/"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr and JWT not in done.stdout + done.stderr


@settings(max_examples=int(os.environ.get("FARM_HYPOTHESIS_EXAMPLES", "150")), deadline=None)
@given(
    secret=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789+/_-.~", min_size=12),
    shape=st.sampled_from(
        [
            "Authorization: Basic {}",
            "Authorization: Bearer {}",
            "proxy-authorization: bearer {}",
            "x-registry-auth: {}",
            "https://ci:{}@r.example.com/v2/",
            "REGISTRY_PASSWORD={}",
            "ci_registry_token={}",
            '"auth": "{}"',
            '"password":"{}"',
            "docker login -u ci -p {} r.example",
            "--password {}",
            "?access_token={}&x=1",
        ]
    ),
)
def test_any_secret_in_any_shape_is_hidden(secret, shape):
    if secret.startswith(("-", "*")) or "REDACTED" in secret:
        return  # an option or an already-masked value, not a secret
    if "/" in secret and "://" in shape:
        return  # a URL's password holds no '/' unless percent-encoded: it would start the path
    text = shape.format(secret)
    out = redact(text)
    assert secret not in out
    assert secret not in docker.mask(text)
