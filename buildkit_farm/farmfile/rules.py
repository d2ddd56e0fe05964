"""The farm file's cross-field rules: what no single table can check on its own.

Each rule reads the tables `config` validated one by one (`Section`s, possibly partial when a
key had errors: a rule about a dropped key does not run, and an array with bad items keeps
its good ones) and appends `ConfigIssue`s, so that `load_config` reports every problem at
once. Key paths use the file's own keys and indices: `node "node2".platforms[0]`. The rules of
one [[target]] are in `farmfile.targets` (`check_target`), the one place they are written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from buildkit_farm.errors import ConfigIssue
from buildkit_farm.farmfile.drivers import (
    DRIVERS,
    check_buildkitd_config,
    check_driver_opts,
    check_endpoint,
    check_remote_daemon_settings,
    check_tls,
)
from buildkit_farm.farmfile.section import Section
from buildkit_farm.farmfile.targets import DEFAULT_DOCKERFILE, check_target
from buildkit_farm.farmfile.values import check_values
from buildkit_farm.farmfile.words import key_name, quote

if TYPE_CHECKING:
    from buildkit_farm.farmfile.model import BuilderConfig, NodeConfig


def check_farm(builder: Section, nodes: list[Section], targets: list[Section], issues: list[ConfigIssue]) -> None:
    """Every cross-field rule of the file: the builder, the nodes, then the targets."""
    b, driver = _check_builder(builder, issues)
    builder_name = b.name if b and builder.has("name") else None
    pinned = _check_nodes(nodes, driver, builder_name, issues)
    check_values(builder, nodes, targets, issues)
    _check_unique("target", [(t.label, t.raw.get("name")) for t in targets], issues)
    tag_owner: dict[str, str] = {}
    pins_known = all(n.model is not None and n.whole("platforms") for n in nodes)
    for target in targets:
        if target.model is not None:
            check_target(target, pinned if pins_known else None, tag_owner, issues)


def _check_builder(builder: Section, issues: list[ConfigIssue]) -> tuple[BuilderConfig | None, str]:
    """The builder's own rules; (the builder when its driver is known, the driver)."""
    b: BuilderConfig | None = builder.model
    raw_driver = builder.raw.get("driver", "docker-container") if isinstance(builder.raw, dict) else None
    driver = b.driver if b else (raw_driver or "docker-container")
    if b is None or not builder.has("driver"):
        return None, driver  # the driver decides every other builder rule
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
    return b, driver


def _check_nodes(
    nodes: list[Section], driver: str, builder_name: str | None, issues: list[ConfigIssue]
) -> dict[str, str]:
    """Every node's rules, endpoints used once, platforms once per node; platform -> its first node."""
    valid_nodes = [n for n in nodes if n.model is not None]
    _check_unique("node", [(n.label, n.raw.get("name")) for n in nodes], issues)
    endpoints: dict[str, str] = {}
    pinned: dict[str, str] = {}
    for node in valid_nodes:
        _check_node(node, driver if driver in DRIVERS else "docker-container", builder_name, issues)
        if driver != "kubernetes":
            _check_endpoint_once(node, endpoints, issues)
        _pin(node, pinned, issues)
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
    return pinned


def _check_endpoint_once(node: Section, endpoints: dict[str, str], issues: list[ConfigIssue]) -> None:
    n: NodeConfig = node.model
    where = _where(n) if node.has("endpoint", "context") else None
    if not where:
        return
    key = where.rstrip("/")
    if key not in endpoints:
        endpoints[key] = n.name
        return
    field = "endpoint" if n.endpoint else "context"
    issues.append(
        ConfigIssue(
            f"{node.label}.{field}",
            f"{where} is already used by node {quote(endpoints[key])}",
            "buildx refuses two nodes on the same endpoint; merge their platforms into one node",
        )
    )


def _pin(node: Section, pinned: dict[str, str], issues: list[ConfigIssue]) -> None:
    """Each platform once per node. Several nodes may pin one platform: they are its pool, in
    file order (the first is preferred; docs/farm-file.md "Node pools"); `pinned` keeps the first."""
    n: NodeConfig = node.model
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
        pinned.setdefault(platform, n.name)


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
    """One node's rules: its names, where it is (per driver), its options."""
    n: NodeConfig = node.model
    label = node.label
    _check_node_names(node, builder_name, issues)
    if not node.has("endpoint", "context", "tls"):
        pass  # the endpoint rules need all three
    elif driver == "kubernetes":
        _check_kubernetes_node(node, issues)
    else:
        _check_reachable_node(node, driver, issues)
    check_driver_opts(label, n.driver_opts, driver, issues)
    check_buildkitd_config(label, n.buildkitd_config, issues)
    for key, value in n.nodeselector.items():
        if not key or "," in key or "=" in key or "," in value or "=" in value:
            issues.append(
                ConfigIssue(
                    f"{label}.nodeselector.{key_name(key)}",
                    "labels and values cannot contain ',' or '='",
                    'e.g. nodeselector = { "kubernetes.io/arch" = "arm64" }',
                )
            )


def _check_node_names(node: Section, builder_name: str | None, issues: list[ConfigIssue]) -> None:
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


def _check_kubernetes_node(node: Section, issues: list[ConfigIssue]) -> None:
    n: NodeConfig = node.model
    for field in ("endpoint", "context"):
        if getattr(n, field) is not None:
            issues.append(
                ConfigIssue(
                    f"{node.label}.{field}",
                    f"the kubernetes driver takes no {field}",
                    "buildx reaches the cluster named by $KUBECONFIG's current context; "
                    'set the namespace with driver_opts = { namespace = "buildkit" }',
                )
            )
    if n.tls is not None:
        issues.append(
            ConfigIssue(
                f"{node.label}.tls", "the kubernetes driver takes no tls", "buildx uses $KUBECONFIG's credentials"
            )
        )


def _check_reachable_node(node: Section, driver: str, issues: list[ConfigIssue]) -> None:
    """A docker-container or remote node: where it is, and nothing only kubernetes takes."""
    n: NodeConfig = node.model
    label = node.label
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
        _check_remote_node(node, issues)
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


def _check_remote_node(node: Section, issues: list[ConfigIssue]) -> None:
    n: NodeConfig = node.model
    label = node.label
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
            ConfigIssue(label, "endpoint is required: the buildkitd address", 'e.g. endpoint = "tcp://buildkitd:1234"')
        )
    check_remote_daemon_settings(label, n.buildkitd_flags, n.buildkitd_config, issues)


__all__ = ["DEFAULT_DOCKERFILE", "check_farm", "check_target"]
