"""The farm file's cross-field rules, and the words its messages are made of.

Each rule reads the tables `config` validated one by one (`Section`s, possibly partial when a
key had errors: a rule about a dropped key does not run, and an array with bad items keeps
its good ones) and appends `ConfigIssue`s, so that `load_config` reports every problem at
once. Key paths use the file's own keys and indices: `node "node2".platforms[0]`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_farm.errors import ConfigIssue
from buildkit_farm.farmfile import platforms as platform_names
from buildkit_farm.farmfile.toml import tomllib

if TYPE_CHECKING:
    from buildkit_farm.farmfile.model import BuilderConfig, NodeConfig, TargetConfig

DRIVERS: tuple[str, ...] = ("docker-container", "remote", "kubernetes")
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

CREDENTIAL_KEY = re.compile(
    r"(?:password|passwd|passphrase|token|(?:^|[-_.])(?:pass|pwd|secret|secret[-_]?key|api[-_]?key"
    r"|access[-_]?key|private[-_]?key|credentials?|auth|auth[-_]?key|client[-_]?secret))$",
    re.IGNORECASE,
)
CREDENTIAL_HINT = (
    "farm files are committed: never put credentials in them; log in with `docker login`, "
    "or pass build secrets by reference with [[target.secrets]] (env or src)"
)

_PLAIN = re.compile(r'^[^"\\\x00-\x1f\x7f]*$')  # needs no escaping inside double quotes
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

DEFAULT_DOCKERFILE = "Dockerfile"

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def syntax_issue(err: Exception) -> ConfigIssue:
    text = str(err)
    line = getattr(err, "lineno", None)
    column = getattr(err, "colno", None)
    match = _TOML_POSITION.search(text)
    if match:
        line, column = int(match[1]), int(match[2])
        text = text[: match.start()].strip()
    reason = getattr(err, "msg", None) or text
    where = f" (at line {line}, column {column})" if line else ""
    return ConfigIssue(path="", message=f"TOML syntax error: {reason}{where}", line=line)


@dataclass
class Section:
    label: str  # 'node "node2"', 'node[3]', 'builder', 'target "app"'
    raw: Any
    model: Any = None  # the validated model (partial when `dropped`), or None
    valid: bool = True
    dropped: frozenset = frozenset()  # keys with errors, left out of a partial model
    # Arrays that lost only some items: key -> the file's index of each item kept.
    kept: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)

    def has(self, *keys: str) -> bool:
        """True when none of `keys` was dropped (the rules about them can run)."""
        return not self.dropped.intersection(keys)

    def whole(self, *keys: str) -> bool:
        """True when every item of `keys` is in the model (rules about what is missing can run)."""
        return self.has(*keys) and not any(key in self.kept for key in keys)

    def at(self, key: str, index: int) -> str:
        """`label.key[i]`, where i is the item's index in the file, not in the model."""
        kept = self.kept.get(key)
        return f"{self.label}.{key}[{kept[index] if kept else index}]"


def table_label(kind: str, index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    if isinstance(name, str) and name:
        return f"{kind} {quote(name)}"
    return f"{kind}[{index}]"


def table_labels(kind: str, items: list[Any]) -> list[str]:
    """The labels of an array of tables; a repeated name falls back to `kind[index]`."""
    labels: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        label = table_label(kind, index, item)
        label = f"{kind}[{index}]" if label in seen else label
        seen.add(label)
        labels.append(label)
    return labels


def allowed_hint(key: str, allowed: tuple[str, ...]) -> str:
    import difflib  # only when a key is unknown

    close = difflib.get_close_matches(key, allowed, n=1)
    suggestion = f'did you mean "{close[0]}"? ' if close else ""
    return f"{suggestion}allowed: {', '.join(allowed)}"


def key_name(key: str) -> str:
    return key if _BARE_KEY.match(key) else quote(key)


def quote(text: str) -> str:
    """A name or value in double quotes, escaped as TOML and JSON escape it."""
    if _PLAIN.match(text):
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)


def short(value: Any) -> str:
    if isinstance(value, str):
        return quote(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return toml_type(value)


def toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return "a date/time" if value is not None else "nothing"


# --------------------------------------------------------------------------- the rules


def credential_issues(doc: dict[str, Any], issues: list[ConfigIssue]) -> set[str]:
    """Flag every key anywhere that looks like a credential, in file order; returns their paths."""
    found: set[str] = set()
    stack: list[tuple[str, Any, int]] = [("", doc, 0)]
    while stack:
        prefix, value, depth = stack.pop()
        if depth > 50:
            continue
        children: list[tuple[str, Any, int]] = []
        if isinstance(value, dict):
            for key, item in value.items():
                container = isinstance(item, (dict, list))
                suspect = not container and CREDENTIAL_KEY.search(key) is not None
                if not (container or suspect):
                    continue  # most keys: no path to build
                path = f"{prefix}.{key_name(key)}" if prefix else key_name(key)
                if suspect:
                    found.add(path)
                    issues.append(ConfigIssue(path, "looks like a credential", CREDENTIAL_HINT))
                else:
                    children.append((path, item, depth + 1))
        elif isinstance(value, list):
            labels = (
                table_labels(prefix, value)
                if prefix in ("node", "target")
                else [f"{prefix}[{i}]" for i in range(len(value))]
            )
            children.extend(
                (label, item, depth + 1) for label, item in zip(labels, value) if isinstance(item, (dict, list))
            )
        stack.extend(reversed(children))
    return found


def check_farm(builder: Section, nodes: list[Section], targets: list[Section], issues: list[ConfigIssue]) -> None:
    b: BuilderConfig | None = builder.model
    driver = (
        b.driver
        if b
        else (builder.raw.get("driver", "docker-container") if isinstance(builder.raw, dict) else "docker-container")
    )
    if b is not None and not builder.has("driver"):
        b = None  # the driver decides every other builder rule
    if b is not None:
        _check_driver_opts("builder", b.driver_opts, b.driver, issues)
        _check_buildkitd_config("builder", b.buildkitd_config, issues)
        if b.driver == "remote":
            _check_remote_daemon_settings("builder", b.buildkitd_flags, b.buildkitd_config, issues)
            if b.buildkit_image:
                issues.append(
                    ConfigIssue(
                        "builder.buildkit_image",
                        "the remote driver runs no BuildKit image",
                        "it attaches a buildkitd that already runs; remove buildkit_image",
                    )
                )

    valid_nodes = [n for n in nodes if n.model is not None]
    _check_unique("node", [(n.label, n.raw.get("name")) for n in nodes], issues)
    builder_name = b.name if b and builder.has("name") else None
    endpoints: dict[str, str] = {}
    pinned: dict[str, str] = {}
    for node in valid_nodes:
        _check_node(node, driver if driver in DRIVERS else "docker-container", builder_name, issues)
        n: NodeConfig = node.model
        where = _where(n) if node.has("endpoint", "context") else None
        if where and driver != "kubernetes":
            key = where.rstrip("/")
            if key in endpoints:
                field = "endpoint" if n.endpoint else "context"
                issues.append(
                    ConfigIssue(
                        f"{node.label}.{field}",
                        f"{where} is already used by node {quote(endpoints[key])}",
                        "buildx refuses two nodes on the same endpoint; merge their platforms into one node",
                    )
                )
            else:
                endpoints[key] = n.name
        seen_here: set[str] = set()
        for index, platform in enumerate(n.platforms):
            if platform in seen_here:
                issues.append(
                    ConfigIssue(
                        node.at("platforms", index),
                        f"{platform} is listed twice",
                        "aliases count: aarch64 and linux/arm64 are the same platform",
                    )
                )
                continue
            seen_here.add(platform)
            if platform in pinned:
                issues.append(
                    ConfigIssue(
                        node.at("platforms", index),
                        f"{platform} is already pinned to node {quote(pinned[platform])}",
                        "buildx silently ignores a second pin; pin each platform to one node",
                    )
                )
            else:
                pinned[platform] = n.name
    all_node_names = {n.raw.get("name") for n in nodes if isinstance(n.raw.get("name"), str)}
    for node in valid_nodes:
        n = node.model
        if n.context and n.context in all_node_names and n.context != n.name:
            issues.append(
                ConfigIssue(
                    f"{node.label}.context",
                    f'"{n.context}" is the farm-owned context of node {quote(n.context)}',
                    "use another context, or the node's endpoint",
                )
            )

    _check_unique("target", [(t.label, t.raw.get("name")) for t in targets], issues)
    tag_owner: dict[str, str] = {}
    pins_known = all(n.model is not None and n.whole("platforms") for n in nodes)
    for target in targets:
        if target.model is not None:
            _check_target(target, pinned if pins_known else None, tag_owner, issues)


def _where(node: NodeConfig) -> str | None:
    return node.endpoint or (f"context {node.context}" if node.context else None)


def _check_unique(kind: str, names: list[tuple[str, Any]], issues: list[ConfigIssue]) -> None:
    seen: dict[str, int] = {}
    for index, (label, name) in enumerate(names):
        if not isinstance(name, str):
            continue
        if name in seen:
            issues.append(
                ConfigIssue(
                    f"{kind}[{index}].name",
                    f"{kind} name {quote(name)} is used twice (first at {kind}[{seen[name]}])",
                    f"give every {kind} its own name",
                )
            )
        else:
            seen[name] = index


def _check_node(node: Section, driver: str, builder_name: str | None, issues: list[ConfigIssue]) -> None:
    n: NodeConfig = node.model
    label = node.label
    if builder_name is not None and n.name == builder_name:
        issues.append(
            ConfigIssue(
                f"{label}.name",
                f'"{n.name}" is also the builder\'s name',
                "buildx refuses a builder named like a context; rename the node or the builder",
            )
        )
    if builder_name is not None and n.context == builder_name:
        issues.append(
            ConfigIssue(
                f"{label}.context",
                f'"{n.context}" is also the builder\'s name',
                "buildx refuses a builder named like a context; rename the builder",
            )
        )
    if n.name.lower() == "default":
        issues.append(
            ConfigIssue(
                f"{label}.name",
                '"default" is the name of Docker\'s own context',
                'pick another node name; to use that context, write context = "default"',
            )
        )

    if not node.has("endpoint", "context", "tls"):
        pass  # the endpoint rules need all three
    elif driver == "kubernetes":
        for field in ("endpoint", "context"):
            if getattr(n, field) is not None:
                issues.append(
                    ConfigIssue(
                        f"{label}.{field}",
                        f"the kubernetes driver takes no {field}",
                        'buildx reaches the cluster named by $KUBECONFIG\'s current context; set the namespace with driver_opts = { namespace = "buildkit" }',
                    )
                )
        if n.tls is not None:
            issues.append(
                ConfigIssue(
                    f"{label}.tls", "the kubernetes driver takes no tls", "buildx uses $KUBECONFIG's credentials"
                )
            )
    else:
        for field in ("nodeselector", "replicas"):
            if getattr(n, field) not in (None, {}):
                issues.append(
                    ConfigIssue(
                        f"{label}.{field}",
                        f"{field} is only for the kubernetes driver",
                        f'the builder\'s driver is "{driver}"',
                    )
                )
        if driver == "remote":
            if n.context is not None:
                issues.append(
                    ConfigIssue(
                        f"{label}.context",
                        "the remote driver takes no context",
                        'give the buildkitd address: endpoint = "tcp://buildkitd:1234"',
                    )
                )
            elif n.endpoint is None:
                issues.append(
                    ConfigIssue(
                        label, "endpoint is required: the buildkitd address", 'e.g. endpoint = "tcp://buildkitd:1234"'
                    )
                )
            _check_remote_daemon_settings(label, n.buildkitd_flags, n.buildkitd_config, issues)
        elif n.endpoint is not None and n.context is not None:
            issues.append(
                ConfigIssue(
                    label,
                    "has both endpoint and context",
                    "keep one: endpoint makes a farm-owned context, context uses one you already have",
                )
            )
        elif n.endpoint is None and n.context is None:
            issues.append(
                ConfigIssue(
                    label,
                    "needs an endpoint or a context",
                    'e.g. endpoint = "ssh://user@host" or context = "my-context"',
                )
            )
        if n.endpoint is not None:
            _check_endpoint(f"{label}.endpoint", n.endpoint, driver, issues)
        if n.tls is not None:
            _check_tls(label, n, issues)
    _check_driver_opts(label, n.driver_opts, driver, issues)
    _check_buildkitd_config(label, n.buildkitd_config, issues)
    for key in n.nodeselector:
        if not key or "," in key or "=" in key or "," in n.nodeselector[key] or "=" in n.nodeselector[key]:
            issues.append(
                ConfigIssue(
                    f"{label}.nodeselector.{key_name(key)}",
                    "labels and values cannot contain ',' or '='",
                    'e.g. nodeselector = { "kubernetes.io/arch" = "arm64" }',
                )
            )


def _check_endpoint(path: str, endpoint: str, driver: str, issues: list[ConfigIssue]) -> None:
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
    if scheme == "tcp://" and not re.search(r":\d+$", hostport):
        issues.append(
            ConfigIssue(
                path,
                f"{quote(endpoint)} names no port",
                "e.g. tcp://host.example:2376" if driver != "remote" else "e.g. tcp://buildkitd:1234",
            )
        )


def _check_tls(label: str, n: NodeConfig, issues: list[ConfigIssue]) -> None:
    if n.endpoint is None or not n.endpoint.startswith("tcp://"):
        issues.append(
            ConfigIssue(
                f"{label}.tls",
                "tls is only for a tcp:// endpoint",
                "ssh:// and unix:// endpoints need no certificates; a context carries its own",
            )
        )
        return
    tls = n.tls
    if (tls.cert is None) != (tls.key is None):
        missing = "key" if tls.key is None else "cert"
        issues.append(
            ConfigIssue(
                f"{label}.tls.{missing}",
                "is required with " + ("cert" if missing == "key" else "key"),
                "client certificates come as a cert and key pair",
            )
        )
    for field in ("ca", "cert", "key"):
        _check_file(f"{label}.tls.{field}", getattr(tls, field), issues)


def _check_remote_daemon_settings(label: str, flags: str | None, config: Any, issues: list[ConfigIssue]) -> None:
    hint = "the remote driver attaches a buildkitd that already runs: configure that daemon itself"
    if flags is not None:
        issues.append(ConfigIssue(f"{label}.buildkitd_flags", "has no effect with the remote driver", hint))
    if config is not None:
        issues.append(ConfigIssue(f"{label}.buildkitd_config", "has no effect with the remote driver", hint))


def _check_driver_opts(label: str, opts: dict[str, str], driver: str, issues: list[ConfigIssue]) -> None:
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


def _check_buildkitd_config(label: str, config: Any, issues: list[ConfigIssue]) -> None:
    path = f"{label}.buildkitd_config"
    if isinstance(config, Path):
        if _check_file(path, config, issues):
            try:
                tomllib.loads(config.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as err:
                issues.append(ConfigIssue(path, f"{config} is not valid TOML: {syntax_issue(err).message}"))
            except (OSError, UnicodeDecodeError, RecursionError) as err:
                issues.append(ConfigIssue(path, f"cannot read {config}: {err}"))
    elif isinstance(config, dict):
        try:
            import tomli_w

            tomli_w.dumps(config)
        except (TypeError, ValueError, RecursionError) as err:
            issues.append(ConfigIssue(path, f"cannot be written as buildkitd.toml: {err}"))


def _check_file(path: str, file: Path | None, issues: list[ConfigIssue], *, hint: str | None = None) -> bool:
    if file is None:
        return False
    try:
        if file.is_file():
            return True
        exists = file.exists()
    except (OSError, ValueError):
        exists = False
    message = f"{file} is a folder, not a file" if exists else f"file not found: {file}"
    issues.append(ConfigIssue(path, message, hint or "paths are relative to the farm file's folder"))
    return False


def _check_dir(path: str, folder: Path, issues: list[ConfigIssue]) -> bool:
    try:
        if folder.is_dir():
            return True
        exists = folder.exists()
    except (OSError, ValueError):
        exists = False
    message = f"{folder} is a file, not a folder" if exists else f"folder not found: {folder}"
    issues.append(ConfigIssue(path, message, "the build context is a folder, relative to the farm file's folder"))
    return False


def _check_target(
    target: Section, pinned: dict[str, str] | None, tag_owner: dict[str, str], issues: list[ConfigIssue]
) -> None:
    t: TargetConfig = target.model
    label = target.label
    raw = target.raw
    has = target.has
    builds = bool(t.platforms or t.dockerfiles or t.dockerfile is not None or not t.sources)
    knows_what = has("platforms", "dockerfiles", "dockerfile", "sources")

    if t.dockerfile is not None and t.dockerfiles:
        issues.append(
            ConfigIssue(
                f"{label}.dockerfiles",
                "cannot be used together with dockerfile",
                "use dockerfile for one multi-arch Dockerfile, or dockerfiles for one per platform",
            )
        )
    raw_dockerfiles = raw.get("dockerfiles") if isinstance(raw.get("dockerfiles"), dict) else {}
    own_key = {_normalised(key): key for key in raw_dockerfiles}  # canonical -> the file's own spelling

    def dockerfiles_path(platform: str) -> str:
        return f"{label}.dockerfiles.{quote(own_key.get(platform, platform))}"

    _check_alias_duplicates(f"{label}.dockerfiles", list(raw_dockerfiles), issues, keys=True)
    _check_alias_duplicates(f"{label}.platforms", raw.get("platforms") or [], issues)
    _check_alias_duplicates(f"{label}.allow_emulation", raw.get("allow_emulation") or [], issues)

    platforms = t.platforms or tuple(t.dockerfiles)
    if not knows_what:
        platforms = ()
    elif builds and not platforms:
        issues.append(
            ConfigIssue(
                label,
                "platforms is required",
                'list the platforms to build, e.g. platforms = ["linux/amd64", "linux/arm64"]; or stitch only with sources = [...]',
            )
        )
    if t.platforms and t.dockerfiles:
        for index, platform in enumerate(t.platforms):
            if platform not in t.dockerfiles:
                issues.append(
                    ConfigIssue(
                        target.at("platforms", index),
                        f"{platform} has no Dockerfile in dockerfiles",
                        f'add "{platform}" = "Dockerfile.{platform.replace("/", "-")}" to dockerfiles, or drop platforms (the keys of dockerfiles imply it)',
                    )
                )
        for key in t.dockerfiles if target.whole("platforms") else ():
            if key not in t.platforms:
                issues.append(
                    ConfigIssue(
                        dockerfiles_path(key),
                        f"{key} is not in the target's platforms",
                        "add it to platforms, or drop platforms (the keys of dockerfiles imply it)",
                    )
                )

    for index, platform in enumerate(platforms if pinned is not None and target.whole("allow_emulation") else ()):
        if platform not in pinned and platform not in t.allow_emulation:
            where = target.at("platforms", index) if t.platforms else dockerfiles_path(platform)
            issues.append(
                ConfigIssue(
                    where,
                    f"{platform} is pinned to no node",
                    f'pin it in some node\'s platforms, or accept QEMU with allow_emulation = ["{platform}"]',
                )
            )
    for index, platform in enumerate(t.allow_emulation):
        if platform not in platforms and knows_what and target.whole("platforms", "dockerfiles"):
            issues.append(
                ConfigIssue(
                    target.at("allow_emulation", index),
                    f"{platform} is not one of the target's platforms",
                    "allow_emulation lists platforms the target builds",
                )
            )

    if not (knows_what and has("context")):
        pass
    elif builds:
        if _check_dir(f"{label}.context", t.context, issues):
            if t.dockerfiles:
                for key, file in t.dockerfiles.items():
                    _check_file(dockerfiles_path(key), file, issues, hint=_dockerfile_hint(t, file))
            elif t.dockerfile is not None:
                _check_file(f"{label}.dockerfile", t.dockerfile, issues, hint=_dockerfile_hint(t, t.dockerfile))
            else:
                default = t.context / DEFAULT_DOCKERFILE
                _check_file(
                    f"{label}.context",
                    default,
                    issues,
                    hint="a target builds <context>/Dockerfile unless it sets dockerfile or dockerfiles",
                )
    elif t.target is not None or t.args or t.cache_from or t.cache_to or t.secrets or t.ssh or t.variant_tags:
        issues.append(
            ConfigIssue(
                label,
                "builds nothing: only sources are stitched",
                "build settings (target, args, cache_from, cache_to, secrets, ssh, variant_tags) need platforms or dockerfiles",
            )
        )

    for index, tag in enumerate(t.tags):
        if tag in tag_owner and tag_owner[tag] != t.name:
            issues.append(
                ConfigIssue(
                    target.at("tags", index),
                    f"{quote(tag)} is also a tag of target {quote(tag_owner[tag])}",
                    "two targets would overwrite each other's image",
                )
            )
        tag_owner.setdefault(tag, t.name)
    if len(set(t.tags)) != len(t.tags):
        issues.append(ConfigIssue(f"{label}.tags", "lists a tag twice"))
    if len(set(t.sources)) != len(t.sources):
        issues.append(ConfigIssue(f"{label}.sources", "lists an image twice"))

    seen_ids: set[str] = set()
    for index, secret in enumerate(t.secrets):
        path = target.at("secrets", index)
        if secret.id in seen_ids:
            issues.append(ConfigIssue(f"{path}.id", f"secret id {quote(secret.id)} is used twice"))
        seen_ids.add(secret.id)
        if (secret.env is None) == (secret.src is None):
            issues.append(
                ConfigIssue(
                    path,
                    "needs exactly one of env or src",
                    'e.g. { id = "npm", env = "NPM_TOKEN" } or { id = "npm", src = "secrets/npmrc" }',
                )
            )
        if secret.src is not None:
            _check_file(f"{path}.src", secret.src, issues)
    for field in ("cache_from", "cache_to", "ssh"):
        for index, value in enumerate(getattr(t, field)):
            if not value.strip():
                issues.append(ConfigIssue(target.at(field, index), "must not be empty"))
    if t.target is not None and not t.target.strip():
        issues.append(ConfigIssue(f"{label}.target", "must not be empty", "the name of a stage: FROM ... AS <name>"))


def check_target(target: Section, pinned: dict[str, str], tag_owner: dict[str, str], issues: list[ConfigIssue]) -> None:
    """Every [[target]] rule, for a target from outside the farm file (a resolved bake target)."""
    _check_target(target, pinned, tag_owner, issues)


def _dockerfile_hint(t: TargetConfig, file: Path) -> str:
    in_context = t.context / file.name
    try:
        if in_context != file and in_context.is_file():
            return f"paths are relative to the farm file's folder, not to the context: did you mean {in_context}?"
    except (OSError, ValueError):
        pass
    return "paths are relative to the farm file's folder"


def _check_alias_duplicates(path: str, raw: Any, issues: list[ConfigIssue], *, keys: bool = False) -> None:
    if not isinstance(raw, list):
        return
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        try:
            canonical = platform_names.normalise(item)
        except ValueError:
            continue
        if canonical in seen:
            where = f"{path}.{quote(item)}" if keys else f"{path}[{index}]"
            issues.append(
                ConfigIssue(where, f"{quote(item)} is {canonical} again", "aliases count: list each platform once")
            )
        seen.setdefault(canonical, index)


def _normalised(name: Any) -> Any:
    try:
        return platform_names.normalise(name)
    except ValueError:
        return name
