"""Image references are read as Docker reads them (distribution/reference's grammar, then its
`Parse` and go-digest's checks): one row per rule, valid and invalid, with what the user is told.

Our own cases, written from the grammar in distribution/reference (reference.go, regexp.go) at
its 2025 state: the 255-character limit counts the path without the registry.
"""

from __future__ import annotations

import pytest

from buildkit_farm.farmfile import reference

SHA256 = "sha256:" + "3f" * 32
SHA512 = "sha512:" + "0a" * 64

# (reference, registry host, repository, tag)
VALID = [
    ("busybox", "docker.io", "busybox", "latest"),
    ("library/busybox:1.36", "docker.io", "library/busybox", "1.36"),
    ("docker.io/library/busybox", "docker.io", "docker.io/library/busybox", "latest"),
    ("index.docker.io/library/busybox", "docker.io", "index.docker.io/library/busybox", "latest"),
    ("ghcr.io/org/team/app:v1.2.3-rc.1", "ghcr.io", "ghcr.io/org/team/app", "v1.2.3-rc.1"),
    ("localhost/app", "localhost", "localhost/app", "latest"),
    ("localhost:5000/app:dev", "localhost:5000", "localhost:5000/app", "dev"),
    ("127.0.0.1:5000/base:latest", "127.0.0.1:5000", "127.0.0.1:5000/base", "latest"),
    ("10.1.2.3/app", "10.1.2.3", "10.1.2.3/app", "latest"),
    ("reg:5000/app", "reg:5000", "reg:5000/app", "latest"),  # a port makes a host of a bare word
    ("reg-1.corp.example:443/a/b/c/d:x", "reg-1.corp.example:443", "reg-1.corp.example:443/a/b/c/d", "x"),
    ("Reg.Example.COM/app", "Reg.Example.COM", "Reg.Example.COM/app", "latest"),  # hosts are not lowercased
    ("MyHost/app", "MyHost", "MyHost/app", "latest"),  # upper case makes a host of a bare word, as docker
    ("xn--bcher-kva.example/app", "xn--bcher-kva.example", "xn--bcher-kva.example/app", "latest"),
    ("[::1]:5000/app:1", "[::1]:5000", "[::1]:5000/app", "1"),
    ("[fd00:1::2]/team/app", "[fd00:1::2]", "[fd00:1::2]/team/app", "latest"),
    ("[FD00::AB]:443/app", "[FD00::AB]:443", "[FD00::AB]:443/app", "latest"),
    ("app:5000", "docker.io", "app", "5000"),  # one component: the number is a tag, not a port
    ("reg.example.com:8080", "docker.io", "reg.example.com", "8080"),
    ("team_app/with__double-under.score---dashes", "docker.io", "team_app/with__double-under.score---dashes", "latest"),
    ("a.b.c/d", "a.b.c", "a.b.c/d", "latest"),
    ("app:UPPER_case.Tag-1", "docker.io", "app", "UPPER_case.Tag-1"),
    ("app:_", "docker.io", "app", "_"),
    ("app:" + "t" * 128, "docker.io", "app", "t" * 128),
    ("app@" + SHA256, "docker.io", "app", "latest"),
    ("r.example/app:1@" + SHA256, "r.example", "r.example/app", "1"),
    ("r.example/app@" + SHA512, "r.example", "r.example/app", "latest"),
    ("r.example/app@sha384:" + "c" * 96, "r.example", "r.example/app", "latest"),
    ("example.com/" + "a" * 255, "example.com", "example.com/" + "a" * 255, "latest"),  # the host is not counted
    ("/".join(["x"] * 128), "docker.io", "/".join(["x"] * 128), "latest"),  # 255 characters
    ("a" * 63 + "z", "docker.io", "a" * 63 + "z", "latest"),  # 64 characters, but not hex: a name
    ("a" * 64 + ":1", "docker.io", "a" * 64, "1"),  # with a tag, docker reads it as a repository
]

# (reference, part of what the user is told)
INVALID = [
    ("", "must not be empty"),
    (" app", "white space"),
    ("app\t:1", "white space"),
    ("App", "must be lowercase"),
    ("reg.example.com/Team/app", "must be lowercase"),
    ("reg:5000/app/Sub:1", "must be lowercase"),
    ("https://reg.example.com/app", "without a scheme"),
    ("oci://reg/app", "without a scheme"),
    ("app:", "a tag has"),
    ("app:-rc1", "a tag has"),
    ("app:.hidden", "a tag has"),
    ("app:" + "t" * 129, "a tag has"),
    ("app:tag+meta", "a tag has"),
    ("app:ünïcode", "a tag has"),
    ("app:1:2", "a tag has"),
    ("app@", "a digest looks like"),
    ("app@sha256", "a digest looks like"),
    ("app@sha256:" + "f" * 31, "a digest looks like"),  # under the grammar's 32
    ("app@sha256:" + "f" * 40, "a sha256 digest has 64 hex digits, not 40"),
    ("app@sha256:" + "f" * 65, "a sha256 digest has 64 hex digits, not 65"),
    ("app@sha512:" + "f" * 64, "a sha512 digest has 128 hex digits, not 64"),
    ("app@sha256:" + "F" * 64, "must be lowercase"),
    ("app@md5:" + "f" * 32, 'unsupported digest algorithm "md5"'),
    ("app@sha256+b64:" + "f" * 64, "unsupported digest algorithm"),
    ("app@sha256:" + "g" * 64, "a digest looks like"),
    (":tag", "expected [registry/]repository"),
    ("@" + SHA256, "a digest looks like"),
    ("/app", "expected [registry/]repository"),
    ("reg/app/", "expected [registry/]repository"),
    ("reg//app", "expected [registry/]repository"),
    ("reg.example.com:/app", "expected [registry/]repository"),
    ("reg.example.com:port/app", "expected [registry/]repository"),
    ("-app", "expected [registry/]repository"),
    ("app-", "expected [registry/]repository"),
    ("a..b", "expected [registry/]repository"),
    ("a___b", "expected [registry/]repository"),
    ("a._b", "expected [registry/]repository"),
    ("-host.example/app", "expected [registry/]repository"),
    ("host-.example/app", "expected [registry/]repository"),
    ("host_name.example:5000/app", "expected [registry/]repository"),  # no _ in a host name
    ("[2001:db8::1]", "an IPv6 registry"),
    ("[2001:db8::1]:5000", "an IPv6 registry"),
    ("[fe80::1%eth0]:5000/app", "an IPv6 registry"),
    ("2001:db8::1/app", "expected [registry/]repository"),  # IPv6 without brackets
    ("[::ffff:1.2.3.4]/app", "an IPv6 registry"),  # IPv4-mapped: excluded by the grammar
    ("example.com/" + "a" * 256, "more than 255"),
    ("/".join(["x"] * 130), "more than 255"),  # the grammar reads the first x as a host: a path of 257
    ("0123456789abcdef" * 4, "image ID"),
    ("app\x00", "expected [registry/]repository"),
    ("app:1\x1b[31m", "a tag has"),
]


@pytest.mark.parametrize(("ref", "host", "repo", "tag"), VALID, ids=[row[0][:60] for row in VALID])
def test_valid_reference(ref, host, repo, tag):
    reference.check_reference(ref)
    assert reference.registry_host(ref) == host
    assert reference.repository(ref) == repo
    if "@" not in ref:
        assert reference.split_tag(ref) == (repo, tag)


@pytest.mark.parametrize(("ref", "why"), INVALID, ids=[repr(row[0][:60]) for row in INVALID])
def test_invalid_reference_says_why(ref, why):
    with pytest.raises(reference.BadReference) as caught:
        reference.check_reference(ref)
    assert why in str(caught.value)
    assert "\x00" not in str(caught.value) and "\x1b" not in str(caught.value)  # nothing raw reaches a terminal


@pytest.mark.parametrize(
    "tag",
    ["reg.example/app:{version}", "reg.example/{team}/app:{version}-{arch}", "[::1]:5000/app:{v}"],
)
def test_a_tag_to_push_takes_placeholders(tag):
    reference.check_tag(tag)


@pytest.mark.parametrize(
    ("tag", "why"),
    [
        ("reg.example/app@" + SHA256, "cannot carry a digest"),
        ("reg.example/app:{version}@" + SHA256, "cannot carry a digest"),
        ("reg.example/App:{version}", "must be lowercase"),
        ("reg.example/app:{ver sion}", "invalid placeholder"),
        ("reg.example/app:{}", "invalid placeholder"),
        ("reg.example/app:{v", "unbalanced brace"),
        ("reg.example/app:v}", "unbalanced brace"),
        ("reg.example/app:-{v}", "a tag has"),
    ],
)
def test_a_tag_to_push_is_refused(tag, why):
    with pytest.raises(reference.BadReference) as caught:
        reference.check_tag(tag)
    assert why in str(caught.value)


@pytest.mark.parametrize(
    ("host", "split"),
    [
        ("127.0.0.1:5000", ("127.0.0.1", 5000)),
        ("localhost", ("localhost", None)),
        ("[::1]:5443", ("::1", 5443)),
        ("[fd00::2]", ("fd00::2", None)),
        ("reg.example.com:443", ("reg.example.com", 443)),
    ],
)
def test_split_host(host, split):
    assert reference.split_host(host) == split
