"""What a node runs against what the file says: pure comparisons the planner makes.

- what buildx stores and passes to buildkitd for a node's settings (it adds entitlements
  by itself, e.g. `network.host` for `network=host`: expected, never a difference);
- which settings a BuildKit container visibly runs with that differ from the file's, each
  named with both values;
- the stamp a node is to carry (`reconcile.stamp`), from what its container carries now.
"""

from __future__ import annotations

import shlex

from buildkit_farm import __version__
from buildkit_farm.farmfile.desired import NodeSettings
from buildkit_farm.reconcile.observe import ObservedBuildkit
from buildkit_farm.reconcile.stamp import NOW, Stamp


def buildx_flags(s: NodeSettings) -> tuple[str, ...]:
    """The flags buildx 0.13 stores for these settings (it adds a network.host entitlement)."""
    flags = shlex.split(s.buildkitd_flags or "")
    entitlements = [
        f.split("=", 1)[1] if "=" in f else (flags[i + 1] if i + 1 < len(flags) else "")
        for i, f in enumerate(flags)
        if f.startswith("--allow-insecure-entitlement")
    ]
    opts = dict(s.driver_opts)
    if (
        opts.get("network") == "host"
        and "network.host" not in entitlements
        and s.driver == "docker-container"
        or not entitlements
        and s.driver in ("kubernetes", "docker-container")
    ):
        flags.append("--allow-insecure-entitlement=network.host")
    return tuple(flags)


def expected_cmd(s: NodeSettings) -> tuple[str, ...]:
    """The arguments buildx 0.13 gives buildkitd in the container (config first, then flags)."""
    config = ("--config", "/etc/buildkit/buildkitd.toml") if s.buildkitd_config else ()
    return config + buildx_flags(s)


def without_buildx_additions(cmd: tuple[str, ...], s: NodeSettings) -> tuple[str, ...]:
    """A container's buildkitd arguments less what buildx adds by itself (the entitlements it
    allows for `network=host` and the like, in either spelling) and its `--config` path."""
    user = shlex.split(s.buildkitd_flags or "")
    out: list[str] = []
    skip = False
    for i, arg in enumerate(cmd):
        if skip:
            skip = False
        elif arg == "--config" and i + 1 < len(cmd) and cmd[i + 1].startswith("/etc/buildkit/"):
            skip = True
        elif arg.startswith("--allow-insecure-entitlement=") and arg not in user:
            continue
        elif arg == "--allow-insecure-entitlement" and i + 1 < len(cmd) and not _user_has(user, cmd[i + 1]):
            skip = True
        else:
            out.append(arg)
    return tuple(out)


def _user_has(user: list[str], entitlement: str) -> bool:
    return f"--allow-insecure-entitlement={entitlement}" in user or any(
        a == "--allow-insecure-entitlement" and b == entitlement for a, b in zip(user, user[1:])
    )


def setting_diffs(s: NodeSettings, bk: ObservedBuildkit) -> list[tuple[str, str, str]]:
    """The settings a BuildKit container visibly runs with that differ from the file's:
    (setting, as it runs, as the file says). What buildx adds by itself is no difference."""
    opts = dict(s.driver_opts)
    diffs = []
    flags = without_buildx_additions(bk.cmd, s)
    if bk.container_id and flags != tuple(shlex.split(s.buildkitd_flags or "")):
        diffs.append(("buildkitd_flags", " ".join(flags) or "(none)", s.buildkitd_flags or "(none)"))
    has_config = "--config" in bk.cmd
    if bk.container_id and has_config != bool(s.buildkitd_config):
        diffs.append(("buildkitd_config", "set" if has_config else "(none)", "set" if s.buildkitd_config else "(none)"))
    if bk.network is not None and bk.network != opts.get("network", bk.network):
        diffs.append(("network", bk.network, opts["network"]))
    if bk.image is not None and "image" in opts and bk.image != opts["image"]:
        diffs.append(("image", bk.image, opts["image"]))
    return diffs


def runs_differently(s: NodeSettings, bk: ObservedBuildkit) -> str:
    """What a running BuildKit container does differently from the settings (empty: nothing).

    This is how a restart is verified: the new container must run with the file's flags,
    config, network and image (what buildx adds to the flags by itself is expected).
    """
    shown = {"buildkitd_flags": "buildkitd args"}
    return ", ".join(f"{shown.get(name, name)} {old}" for name, old, _ in setting_diffs(s, bk))


def wanted_stamp(
    builder: str, s: NodeSettings, bk: ObservedBuildkit | None, stored: Stamp | None, *, reclaim: bool
) -> Stamp | None:
    """What buildx's node is to store for the container's environment: the container's own
    stamp when it runs these settings; what is stored when the container runs a newer
    file's (left as it is); else these settings, applied now, superseding what it runs."""
    if s.driver != "docker-container":
        return None  # remote and kubernetes BuildKits carry no environment the farm sets
    fp, node = s.fingerprint, f"{builder.lower()}/{s.name}"
    seen = bk.stamp if bk is not None else None
    if seen is not None and seen.settings == fp:
        return seen
    if seen is not None and seen.newer_than(fp) is not None and not reclaim:
        return stored if stored is not None and stored.settings == fp else Stamp(fp, node, __version__, NOW)
    if seen is None:
        return Stamp(settings=fp, node=node, version=__version__, applied=NOW)
    return seen.successor(fp, node, __version__)


def newer_reason(s: NodeSettings, bk: ObservedBuildkit, replaced_at: str) -> str:
    """Why a node that runs a newer farm file's settings is left alone."""
    assert bk.stamp is not None
    named = "; ".join(f"{f}: {old} there, {new} in this file" for f, old, new in setting_diffs(s, bk))
    return (
        f"{s.name} runs settings from a newer farm file ({named or 'settings ' + bk.stamp.settings}; applied "
        f"{bk.stamp.applied or '(time unknown)'}, after this file's at {replaced_at or '(time unknown)'}); "
        "not changed back (`farm up --reclaim` applies this file's)"
    )
