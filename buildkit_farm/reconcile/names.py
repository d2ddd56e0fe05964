"""How the farm names what it makes in buildx and on the engines, and back."""

from __future__ import annotations


def buildx_node_name(builder: str, node: str) -> str:
    """The buildx node name for a file node: `<builder>-<node>`, lowercase.

    BuildKit's container is `buildx_buildkit_<node name>` on each engine, so the builder's
    name is part of it: two farms with a node called `node1` on one engine don't collide.
    """
    return f"{builder}-{node}".lower()


def file_node_name(builder: str, buildx_node: str) -> str:
    """The file's node name for a buildx node name (the inverse of `buildx_node_name`)."""
    prefix = f"{builder}-".lower()
    return buildx_node[len(prefix) :] if buildx_node.startswith(prefix) else buildx_node


def container_name(buildx_node: str) -> str:
    """The BuildKit container buildx's docker-container driver runs for a node."""
    return f"buildx_buildkit_{buildx_node}"


def marker_name(kind: str, buildx_node: str) -> str:
    """A created, never started container the farm keeps beside a node's BuildKit: `lock` or `drain`.

    Container names are unique per engine, so creating one is atomic: it is how runners on
    different machines agree (who holds a node, whether it is drained).
    """
    return f"buildkit-farm-{kind}_{buildx_node}"
