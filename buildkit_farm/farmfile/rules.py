"""The farm file's cross-field rules: what no single table can check on its own.

Each rule reads the tables `config` validated one by one (`Section`s, possibly partial when a
key had errors: a rule about a dropped key does not run, and an array with bad items keeps
its good ones) and appends `ConfigIssue`s, so that `load_config` reports every problem at
once. Key paths use the file's own keys and indices: `node "node2".platforms[0]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildkit_farm.errors import ConfigIssue
from buildkit_farm.farmfile import platforms as platform_names
from buildkit_farm.farmfile.drivers import (
    DRIVERS,
    check_buildkitd_config,
    check_driver_opts,
    check_endpoint,
    check_remote_daemon_settings,
    check_tls,
)
from buildkit_farm.farmfile.paths import check_dir, check_file
from buildkit_farm.farmfile.section import Section
from buildkit_farm.farmfile.values import check_values
from buildkit_farm.farmfile.words import key_name, quote

if TYPE_CHECKING:
    from buildkit_farm.farmfile.model import BuilderConfig, NodeConfig, TargetConfig

DEFAULT_DOCKERFILE = "Dockerfile"


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
        check_driver_opts("builder", b.driver_opts, b.driver, issues)
        check_buildkitd_config("builder", b.buildkitd_config, issues)
        if b.driver == "remote":
            check_remote_daemon_settings("builder", b.buildkitd_flags, b.buildkitd_config, issues)
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
            # Several nodes may pin one platform: they are its pool, in file order (the
            # first is preferred; see docs/farm-file.md "Node pools"). `pinned` keeps the first.
            pinned.setdefault(platform, n.name)
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

    check_values(builder, nodes, targets, issues)
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
    for index, (_label, name) in enumerate(names):
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
                        "buildx reaches the cluster named by $KUBECONFIG's current context; "
                        'set the namespace with driver_opts = { namespace = "buildkit" }',
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
            check_remote_daemon_settings(label, n.buildkitd_flags, n.buildkitd_config, issues)
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
            check_endpoint(f"{label}.endpoint", n.endpoint, driver, issues)
        if n.tls is not None:
            check_tls(label, n.endpoint, {"ca": n.tls.ca, "cert": n.tls.cert, "key": n.tls.key}, issues)
    check_driver_opts(label, n.driver_opts, driver, issues)
    check_buildkitd_config(label, n.buildkitd_config, issues)
    for key in n.nodeselector:
        if not key or "," in key or "=" in key or "," in n.nodeselector[key] or "=" in n.nodeselector[key]:
            issues.append(
                ConfigIssue(
                    f"{label}.nodeselector.{key_name(key)}",
                    "labels and values cannot contain ',' or '='",
                    'e.g. nodeselector = { "kubernetes.io/arch" = "arm64" }',
                )
            )


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
                'list the platforms to build, e.g. platforms = ["linux/amd64", "linux/arm64"]; '
                "or stitch only with sources = [...]",
            )
        )
    if t.platforms and t.dockerfiles:
        for index, platform in enumerate(t.platforms):
            if platform not in t.dockerfiles:
                issues.append(
                    ConfigIssue(
                        target.at("platforms", index),
                        f"{platform} has no Dockerfile in dockerfiles",
                        f'add "{platform}" = "Dockerfile.{platform.replace("/", "-")}" to dockerfiles, '
                        "or drop platforms (the keys of dockerfiles imply it)",
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
        if pinned is not None and platform not in pinned and platform not in t.allow_emulation:
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
        if check_dir(f"{label}.context", t.context, issues):
            if t.dockerfiles:
                for key, file in t.dockerfiles.items():
                    check_file(dockerfiles_path(key), file, issues, hint=_dockerfile_hint(t, file))
            elif t.dockerfile is not None:
                check_file(f"{label}.dockerfile", t.dockerfile, issues, hint=_dockerfile_hint(t, t.dockerfile))
            else:
                default = t.context / DEFAULT_DOCKERFILE
                check_file(
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
                "build settings (target, args, cache_from, cache_to, secrets, ssh, variant_tags) "
                "need platforms or dockerfiles",
            )
        )
    _check_target_lists(target, tag_owner, issues)


def _check_target_lists(target: Section, tag_owner: dict[str, str], issues: list[ConfigIssue]) -> None:
    """A target's tags (each owned by one target), sources, secrets and cache entries."""
    t: TargetConfig = target.model
    label = target.label
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
            check_file(f"{path}.src", secret.src, issues)
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
