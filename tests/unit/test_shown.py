"""What a message may show: credentials redacted, control characters escaped, everywhere a
farm-file value is quoted (words.quote) and in the CLI's one error printer (errors.shown)."""

from __future__ import annotations

import pytest

from buildkit_farm.errors import printable, redact, shown
from buildkit_farm.farmfile.words import quote, short


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://user:hunter2@host:2376", "tcp://***@host:2376"),
        ("http://bob:p%40ss@proxy:3128/x", "http://***@proxy:3128/x"),
        ("user:hunter2@reg.example.com/app:1", "***@reg.example.com/app:1"),
        ("ssh://farm@127.0.0.1:2222", "ssh://farm@127.0.0.1:2222"),  # a user without password stays
        ("reg:5000/app:1@sha256:" + "a" * 64, "reg:5000/app:1@sha256:" + "a" * 64),  # a digest is no password
        ("token ghp_abcdefghijklmnopqrstuvwxyz012345 here", "token *** here"),
        ("AKIAABCDEFGHIJKLMNOP", "***"),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\nnext", "***\nnext"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("\x9b2J", "\\x9b2J"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("tab\there", "tab\\x09here"),
        ("vérsion", "vérsion"),  # printable non-ASCII stays readable
    ],
)
def test_printable(text, expected):
    assert printable(text) == expected


def test_shown_keeps_the_line_breaks_between_issues_only():
    assert shown("a\nb\x1b", keep="\n") == "a\nb\\x1b"
    assert shown("a\nb") == "a\\x0ab"


@pytest.mark.parametrize(
    "value",
    ["app\x1b]0;title\x07", "name\u202e", "x\ny", "tcp://u:hunter2@h:1", "ghp_abcdefghijklmnopqrstuvwxyz0123"],
)
def test_quote_and_short_never_show_control_characters_or_credentials(value):
    for text in (quote(value), short(value), short(value * 10)):
        assert text.isprintable()
        assert "hunter2" not in text and "ghp_" not in text and "lmnopqrstuv" not in text


def test_short_redacts_before_it_cuts():
    # cut first, the URL would lose its '@' and redact() would not see a password in it
    url = "tcp://user:" + "p" * 80 + "@host:2376"
    assert "ppp" not in short(url)


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1:5000/disk-usage-reporter-tool:1",
        "ask-the-team-before-changing-this-label",
        "my_npm_packages_are_in_this_folder_here_ok",
        "ssh://farm@127.0.0.1:2222",
        "type=registry,ref=127.0.0.1:5000/app:cache,mode=max",
    ],
)
def test_ordinary_values_are_not_taken_for_credentials(text):
    from buildkit_farm.farmfile.values import credential_in

    assert credential_in(text) is None
    assert redact(text) == text
