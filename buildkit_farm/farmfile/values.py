"""What a value in the farm file may contain where it reaches a command line or a message.

- buildx parses several options as CSV (`--docker host=...,ca=...`, `--driver-opt k=v`,
  `--cache-from type=registry,ref=...`, `--secret id=...,src=...`): a `,`, a quote or a
  line break in a value would add options of its own (`tcp://h:2376/,skip-tls-verify=true`).
  Such values are refused; cache entries are parsed as buildx parses them.
- `buildkitd_flags` is split into words as a shell would: an unclosed quote is refused at
  load time, not when `farm plan` runs.
- A value that looks like a credential (`ghp_...`, `AKIA...`, a private key, `user:pw@` in
  a URL) is refused wherever it is: farm files are committed. The message never shows it.

`check_values` is one of the cross-field rules (`rules.check_farm` calls it).
"""

from __future__ import annotations

import csv
import shlex
from typing import TYPE_CHECKING, Any

from buildkit_farm.errors import CREDENTIAL_TOKENS, URL_USERINFO, ConfigIssue
from buildkit_farm.farmfile.words import key_name, short

if TYPE_CHECKING:
    from buildkit_farm.farmfile.section import Section

# Characters that end a CSV field or open a quoted one, in the way buildx reads options.
_CSV_BREAKERS = {",": "','", '"': "a double quote", "'": "a single quote", "\n": "a line break", "\r": "a line break"}
CACHE_TYPES = ("registry", "local", "inline", "gha", "s3", "azblob")


def csv_breaker(value: str) -> str | None:
    """What in `value` would break out of one buildx CSV field, or None."""
    for ch, name in _CSV_BREAKERS.items():
        if ch in value:
            return name
    if not value.isprintable():
        return "a control character"
    return None


def credential_in(value: str) -> str | None:
    """The message for a value that looks like a credential, or None."""
    if "://" in value and URL_USERINFO.search(value):
        return "carries a password"
    if CREDENTIAL_TOKENS.search(value):
        return "looks like a credential"
    return None


def shell_words_issue(value: str) -> str | None:
    """Why `value` cannot be split into words as a shell would, or None."""
    try:
        shlex.split(value)
    except ValueError as err:
        return f"cannot be split into words: {str(err).lower()}"
    return None


def cache_entry_issue(value: str) -> tuple[str, str] | None:
    """(message, hint) for a cache_from/cache_to entry buildx would refuse or misread."""
    hint = 'e.g. "type=registry,ref=registry.example.com/app:cache" or just the image reference'
    if "\n" in value or "\r" in value or not value.isprintable():
        return "must be one line of printable characters", hint
    if '"' in value:  # buildx's CSV refuses a bare quote; a quoted field is never needed here
        return "contains a double quote, which buildx's option parser would refuse or misread", hint
    try:
        fields = next(csv.reader([value], strict=True))
    except (csv.Error, StopIteration) as err:
        return f"is not a valid buildx cache option list ({err})", hint
    if len(fields) == 1 and "=" not in fields[0]:
        return _cache_ref_issue(fields[0])  # a bare image reference: buildx reads it as type=registry,ref=...
    for field in fields:
        key, eq, _ = field.partition("=")
        if not eq or not key.strip():
            return f"has an item without key=value: {short(field)}", hint
    types = [f.partition("=")[2] for f in fields if f.partition("=")[0].strip() == "type"]
    if types and types[0] not in CACHE_TYPES:
        return f"unknown cache type {short(types[0])}", f"known: {', '.join(CACHE_TYPES)}"
    refs = [f.partition("=")[2] for f in fields if f.partition("=")[0].strip() == "ref"]
    if refs and (not types or types[0] == "registry"):
        return _cache_ref_issue(refs[0])
    return None


def _cache_ref_issue(ref: str) -> tuple[str, str] | None:
    """A registry cache's `ref` is an image reference: refused here, not when the build runs."""
    from buildkit_farm.farmfile.reference import BadReference, check_reference

    try:
        check_reference(ref)
    except BadReference as err:
        return (
            f"the cache ref is not an image reference: {err.message}",
            err.hint or "e.g. registry.example.com/app:cache",
        )
    return None


def check_values(builder: Section, nodes: list[Section], targets: list[Section], issues: list[ConfigIssue]) -> None:
    """The value rules for every table that validated (possibly partially)."""
    if builder.model is not None:
        _check_daemon_values("builder", builder.model, issues)
    for node in nodes:
        if node.model is not None:
            _check_node_values(node, node.model, issues)
    for target in targets:
        if target.model is not None:
            _check_target_values(target, target.model, issues)


def _check_node_values(node: Section, n: Any, issues: list[ConfigIssue]) -> None:
    _check_daemon_values(node.label, n, issues)
    if n.endpoint is not None and node.has("endpoint"):
        _refuse_breakers(f"{node.label}.endpoint", n.endpoint, issues, "an endpoint is one URL, e.g. tcp://host:2376")
    if n.tls is not None and node.has("tls"):
        for field in ("ca", "cert", "key"):
            path = getattr(n.tls, field)
            if path is not None:
                _refuse_breakers(f"{node.label}.tls.{field}", str(path), issues, "rename the file or its folder")
    for key, value in n.nodeselector.items() if node.has("nodeselector") else ():
        for text in (key, value):
            _refuse_breakers(f"{node.label}.nodeselector.{key_name(key)}", text, issues, None)


def _check_target_values(target: Section, t: Any, issues: list[ConfigIssue]) -> None:
    for field in ("cache_from", "cache_to"):
        for index, entry in enumerate(getattr(t, field) if target.has(field) else ()):
            found = cache_entry_issue(entry)
            if found:
                issues.append(ConfigIssue(target.at(field, index), found[0], found[1]))
    for index, secret in enumerate(t.secrets if target.has("secrets") else ()):
        if secret.src is not None:
            _refuse_breakers(f"{target.at('secrets', index)}.src", str(secret.src), issues, "rename the file")
    for index, entry in enumerate(t.ssh if target.has("ssh") else ()):
        _refuse_breakers(target.at("ssh", index), entry, issues, 'e.g. ssh = ["default"] or ["id=~/.ssh/key"]')


def _check_daemon_values(label: str, model: Any, issues: list[ConfigIssue]) -> None:
    """driver_opts (each one `--driver-opt k=v`, CSV) and buildkitd_flags (shell words)."""
    for key, value in model.driver_opts.items():
        path = f"{label}.driver_opts.{key_name(key)}"
        if "=" in key:
            issues.append(ConfigIssue(path, "an option name cannot contain '='"))
        _refuse_breakers(path, key, issues, None, what="the option name")
        _refuse_breakers(path, value, issues, 'one driver option per key: driver_opts = { memory = "1g", ... }')
    if model.buildkitd_flags is not None:
        why = shell_words_issue(model.buildkitd_flags)
        if why:
            issues.append(
                ConfigIssue(
                    f"{label}.buildkitd_flags",
                    why,
                    'quote as a shell would: buildkitd_flags = "--allow-insecure-entitlement network.host"',
                )
            )


def _refuse_breakers(path: str, value: str, issues: list[ConfigIssue], hint: str | None, *, what: str = "") -> None:
    found = csv_breaker(value)
    if found:
        subject = f"{what} contains" if what else "contains"
        issues.append(
            ConfigIssue(
                path,
                f"{subject} {found}, which buildx would read as the start of another option",
                hint,
            )
        )
