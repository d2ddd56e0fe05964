"""What each buildx driver accepts: endpoint schemes, driver options, daemon settings, TLS.

Checks of one node's (or the builder's) own keys against its driver; each appends
`ConfigIssue`s with the key path it is given.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

from buildkit_farm import encoding
from buildkit_farm.errors import ConfigIssue
from buildkit_farm.farmfile import limits
from buildkit_farm.farmfile.credentials import CREDENTIAL_HINT, CREDENTIAL_KEY
from buildkit_farm.farmfile.paths import check_file
from buildkit_farm.farmfile.toml import tomllib
from buildkit_farm.farmfile.words import allowed_hint, key_name, quote, short, syntax_issue

DRIVERS: tuple[str, ...] = ("docker-container", "remote", "kubernetes")
DEFAULT_DRIVER: Final = "docker-container"
ENDPOINT_SCHEMES: dict[str, tuple[str, ...]] = {
    "docker-container": ("unix://", "ssh://", "tcp://"),
    "remote": ("tcp://", "unix://"),
    "kubernetes": (),
}
# The driver options buildx accepts per driver (`docker buildx create --driver-opt`).
# Options the file models as keys of their own are refused with a pointer to that key.
DRIVER_OPTS: dict[str, tuple[str, ...]] = {
    "docker-container": (
        "image",
        "network",
        "cgroup-parent",
        "restart-policy",
        "memory",
        "memory-swap",
        "cpu-quota",
        "cpu-period",
        "cpu-shares",
        "cpuset-cpus",
        "cpuset-mems",
        "default-load",
        "provenance-add-gha",
    ),
    "remote": ("servername", "default-load"),
    "kubernetes": (
        "image",
        "namespace",
        "default-load",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "annotations",
        "labels",
        "tolerations",
        "serviceaccount",
        "schedulername",
        "timeout",
        "rootless",
        "loadbalance",
        "qemu.install",
        "qemu.image",
    ),
}
DRIVER_OPT_KEYS_ELSEWHERE: dict[str, str] = {
    "nodeselector": "use the node's nodeselector table",
    "replicas": "use the node's replicas key",
    "cacert": "use the node's tls = { ca = ..., cert = ..., key = ... }",
    "cert": "use the node's tls = { ca = ..., cert = ..., key = ... }",
    "key": "use the node's tls = { ca = ..., cert = ..., key = ... }",
}


def check_endpoint(path: str, endpoint: str, driver: str, issues: list[ConfigIssue]) -> None:
    schemes = ENDPOINT_SCHEMES[driver]
    scheme = endpoint.split("://", 1)[0] + "://" if "://" in endpoint else None
    if scheme not in schemes:
        what = "a buildkitd address" if driver == "remote" else "a Docker engine"
        issues.append(
            ConfigIssue(
                path, f"unsupported endpoint {quote(endpoint)}", f"{what} is {' or '.join(s + '...' for s in schemes)}"
            )
        )
        return
    rest = endpoint[len(scheme) :]
    if scheme == "unix://":
        if not rest.startswith("/"):
            issues.append(
                ConfigIssue(
                    path, f"{quote(endpoint)} needs an absolute socket path", "e.g. unix:///var/run/docker.sock"
                )
            )
        return
    host = rest.split("/", 1)[0]
    userinfo, _, hostport = host.rpartition("@")
    if ":" in userinfo:
        issues.append(
            ConfigIssue(
                path,
                "carries a password",
                CREDENTIAL_HINT.replace("log in with `docker login`", "use ssh keys (ssh-agent or ~/.ssh/config)"),
            )
        )
    if not hostport or hostport.startswith(":"):
        issues.append(
            ConfigIssue(
                path,
                f"{quote(endpoint)} names no host",
                f"e.g. {scheme}host.example" + (":2376" if scheme == "tcp://" else ""),
            )
        )
        return
    if scheme == "tcp://" and not re.fullmatch(r".*:[0-9]{1,5}", hostport, re.DOTALL):
        issues.append(
            ConfigIssue(
                path,
                f"{quote(endpoint)} names no port",
                "e.g. tcp://host.example:2376" if driver != "remote" else "e.g. tcp://buildkitd:1234",
            )
        )
        return
    why = _host_problem(hostport) or ("names an empty user" if "@" in host and not userinfo else None)
    if why:
        example = "tcp://host.example:2376 or tcp://[::1]:2376" if scheme == "tcp://" else "ssh://user@host.example:22"
        issues.append(ConfigIssue(path, f"{quote(endpoint)} {why}", f"e.g. {example}"))


# A host name, an IPv4 address or a bracketed IPv6 address (a zone allowed), then an optional port.
_HOST_PORT = re.compile(r"(?:(?P<name>[A-Za-z0-9._-]+)|\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9._-]+)?\])(?::(?P<port>[0-9]*))?")


def _host_problem(hostport: str) -> str | None:
    """What Docker's client would refuse in `host[:port]`: other characters, a bad port, a long name."""
    match = _HOST_PORT.fullmatch(hostport)
    if match is None:
        return "has a malformed host (letters, digits, '.', '-' or a bracketed IPv6 address, then :port)"
    if match["name"] and len(match["name"]) > 253:
        return f"names a host of {len(match['name']):,} characters, more than DNS allows (253)"
    port = match["port"]
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        return f"names the port {port or '(empty)'!s}, not one from 1 to 65535"
    return None


def check_tls(label: str, endpoint: str | None, files: dict[str, Path | None], issues: list[ConfigIssue]) -> None:
    """A node's `tls` table (`files`: ca, cert, key) against its endpoint."""
    if endpoint is None or not endpoint.startswith("tcp://"):
        issues.append(
            ConfigIssue(
                f"{label}.tls",
                "tls is only for a tcp:// endpoint",
                "ssh:// and unix:// endpoints need no certificates; a context carries its own",
            )
        )
        return
    if (files["cert"] is None) != (files["key"] is None):
        missing = "key" if files["key"] is None else "cert"
        issues.append(
            ConfigIssue(
                f"{label}.tls.{missing}",
                "is required with " + ("cert" if missing == "key" else "key"),
                "client certificates come as a cert and key pair",
            )
        )
    for field in ("ca", "cert", "key"):
        check_file(f"{label}.tls.{field}", files[field], issues)


def check_remote_daemon_settings(label: str, flags: str | None, config: Any, issues: list[ConfigIssue]) -> None:
    hint = "the remote driver attaches a buildkitd that already runs: configure that daemon itself"
    if flags is not None:
        issues.append(ConfigIssue(f"{label}.buildkitd_flags", "has no effect with the remote driver", hint))
    if config is not None:
        issues.append(ConfigIssue(f"{label}.buildkitd_config", "has no effect with the remote driver", hint))


def check_driver_opts(label: str, opts: dict[str, str], driver: str, issues: list[ConfigIssue]) -> None:
    allowed = DRIVER_OPTS.get(driver, ())
    for key, value in opts.items():
        path = f"{label}.driver_opts.{key_name(key)}"
        if CREDENTIAL_KEY.search(key):
            continue  # already reported as a credential
        if key in DRIVER_OPT_KEYS_ELSEWHERE:
            issues.append(ConfigIssue(path, "is set by its own key in the farm file", DRIVER_OPT_KEYS_ELSEWHERE[key]))
        elif key.startswith("env.") and driver == "docker-container" and len(key) > 4:
            continue
        elif key not in allowed:
            extra = ", env.NAME" if driver == "docker-container" else ""
            issues.append(
                ConfigIssue(path, f"is not an option of the {driver} driver", allowed_hint(key, allowed) + extra)
            )
        elif key == "network" and not value:
            issues.append(ConfigIssue(path, "must not be empty", 'e.g. network = "host"'))
        elif key in ("default-load", "rootless", "qemu.install") and value not in ("true", "false"):
            issues.append(ConfigIssue(path, f"expected true or false, not {short(value)}"))
        elif key == "loadbalance" and value not in ("sticky", "random"):
            issues.append(ConfigIssue(path, f'must be "sticky" or "random", not {short(value)}'))


def check_buildkitd_config(label: str, config: Any, issues: list[ConfigIssue]) -> None:
    path = f"{label}.buildkitd_config"
    if isinstance(config, Path):
        if check_file(path, config, issues):
            try:
                # at most 256 KiB, like the farm file
                tomllib.loads(encoding.decode(limits.read_bounded(config), config.name))
            except encoding.NotUTF8 as err:
                issues.append(ConfigIssue(path, f"{config} {err.message}", err.hint))
            except tomllib.TOMLDecodeError as err:
                issues.append(ConfigIssue(path, f"{config} is not valid TOML: {syntax_issue(err).message}"))
            except limits.TooBig as err:
                issues.append(ConfigIssue(path, f"{config} {err.issue.message}", err.issue.hint))
            except (OSError, UnicodeDecodeError, RecursionError) as err:
                issues.append(ConfigIssue(path, f"cannot read {config}: {getattr(err, 'strerror', None) or err}"))
    elif isinstance(config, dict):
        try:
            import tomli_w

            tomli_w.dumps(config)
        except (TypeError, ValueError, RecursionError) as err:
            issues.append(ConfigIssue(path, f"cannot be written as buildkitd.toml: {err}"))
