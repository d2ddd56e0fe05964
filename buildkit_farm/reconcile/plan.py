"""The plan: what `farm up` must change, computed purely from the file and the observed state.

`make_plan(config, state)` never talks to Docker (it never imports python_on_whales). It
returns ordered `Step`s; each has an action from a small closed set and a reason, and an
unchanged thing is a NOOP step with the reason it needs nothing.

Kinds and actions (apply has one function per pair):
- context   + create, ~ update (endpoint or TLS), - remove (down only)
- builder   + create (claims it for the farm), -/+ replace (the driver changed), - remove
- node      + append, ~ update in place (`--append --node`), or rejoin (`--leave` then
            `--append`) when a setting must be cleared, - leave; for pools (pools.py):
            ~ pin (a pin moves to the pool's first healthy node), - leave (a down pool
            node, so the others can change), + join (it answers again)
- buildkit  + create its container, ~ start or restart it (state volume kept), - remove
            its container (state volume kept unless asked)
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

from buildkit_farm.errors import EngineUnreachable, FarmError, ForeignResource
from buildkit_farm.reconcile import pools
from buildkit_farm.reconcile.observe import (
    FarmState,
    ObservedBuildkit,
    ObservedNode,
    buildx_node_name,
)

if TYPE_CHECKING:  # the pydantic model is loaded only when a file is; see convergence.converge_file
    from buildkit_farm.farmfile.model import FarmConfig, NodeSettings


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    REMOVE = "remove"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "remove": "-", "no-op": "="}[self.value]


@dataclass(frozen=True)
class Step:
    """One thing to do (or, for NOOP, not to do) to one resource."""

    kind: str  # context | builder | node | buildkit
    name: str  # context name, builder name, or the file's node name
    action: Action
    reason: str
    changes: tuple[tuple[str, str, str], ...] = ()  # (field, old, new), for people
    mode: str = ""  # the variant apply uses: node ~ "append" | "rejoin"; buildkit ~ "start" | "restart" | "move"
    settings: NodeSettings | None = None  # the node's desired settings (context, node, buildkit)
    buildx_node: str | None = None
    where: str | None = None  # the context or host to act through (buildkit steps)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action.value,
            "symbol": self.action.symbol,
            "reason": self.reason,
            "changes": [{"field": f, "old": o, "new": n} for f, o, n in self.changes],
            **({"mode": self.mode} if self.mode else {}),
            **({"buildx_node": self.buildx_node} if self.buildx_node else {}),
        }


@dataclass(frozen=True)
class Plan:
    builder: str
    driver: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def changes(self) -> tuple[Step, ...]:
        """The steps that change something; empty means converged."""
        return tuple(s for s in self.steps if s.action is not Action.NOOP)

    @property
    def converged(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict:
        return {
            "builder": self.builder,
            "driver": self.driver,
            "converged": self.converged,
            "steps": [s.to_dict() for s in self.steps],
        }


# ---------------------------------------------------------------------------- pure helpers
def buildx_endpoint(s: NodeSettings) -> str:
    """What buildx is given as the node's endpoint: its context (a BuildKit address for `remote`)."""
    return (s.endpoint or s.context) if s.driver == "remote" else s.context


def settings_fingerprint(s: NodeSettings) -> str:
    """A digest of the settings a BuildKit container is created with (not its platforms)."""
    data = {
        "driver": s.driver,
        "driver_opts": [list(kv) for kv in s.driver_opts],
        "buildkitd_flags": s.buildkitd_flags or "",
        "buildkitd_config": s.buildkitd_config or "",
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


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


def runs_differently(s: NodeSettings, bk: ObservedBuildkit) -> str:
    """What a running BuildKit container does differently from the settings (empty: nothing).

    This is how a restart is verified: the new container must run with the file's flags,
    config, network and image.
    """
    opts = dict(s.driver_opts)
    diffs = []
    if bk.cmd != expected_cmd(s):
        diffs.append(f"buildkitd args {' '.join(bk.cmd) or '(none)'}")
    if "network" in opts and bk.network is not None and bk.network != opts["network"]:
        diffs.append(f"network {bk.network}")
    if "image" in opts and bk.image is not None and bk.image != opts["image"]:
        diffs.append(f"image {bk.image}")
    return ", ".join(diffs)


def split_native(detected: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Detected platforms → (native, emulated).

    BuildKit lists its engine's own platform first. Native are that architecture (any
    variant), plus 386 on amd64 and 32-bit arm on arm64, which those CPUs run directly;
    the rest runs under emulation (QEMU via binfmt_misc).
    """
    if not detected:
        return (), ()
    first = detected[0].split("/")
    os_, arch = first[0], first[1] if len(first) > 1 else ""
    extra = {"amd64": {"386"}, "arm64": {"arm"}}.get(arch, set())
    native, emulated = [], []
    for p in detected:
        parts = p.split("/")
        same = parts[0] == os_ and len(parts) > 1 and (parts[1] == arch or parts[1] in extra)
        (native if same else emulated).append(p)
    return tuple(native), tuple(emulated)


def _tls_wanted(s: NodeSettings, state: FarmState) -> tuple[tuple[str, str], ...]:
    if s.tls is None:
        return ()
    out = []
    for kind, path in (("ca", s.tls.ca), ("cert", s.tls.cert), ("key", s.tls.key)):
        if path is not None:
            out.append((kind, state.tls_digests.get(str(path), "(unreadable)")))
    return tuple(out)


def _unreachable(s_name: str, bk: ObservedBuildkit, endpoint: str | None) -> EngineUnreachable:
    detail = bk.error or "no answer"
    return EngineUnreachable(
        node=s_name, endpoint=endpoint or bk.context, detail=detail, hint=unreachable_hint(detail, endpoint)
    )


def unreachable_hint(detail: str, endpoint: str | None) -> str | None:
    """What to check when an engine did not answer, read from the error (ssh, socket, TLS)."""
    low = detail.lower()
    if "ssh" in low:
        return f"check that sshd answers at {endpoint or 'the endpoint'} and that `ssh` to it works non-interactively (BatchMode); then rerun `farm up`"
    if "no such file" in low or "cannot connect" in low:
        return "is that Docker engine running, and is the socket path right? then rerun `farm up`"
    if "tls" in low or "certificate" in low or "x509" in low:
        return "check the node's tls.ca/cert/key against the engine's certificates; then rerun `farm up`"
    return None


# ---------------------------------------------------------------------------- the plan
def make_plan(
    config: FarmConfig,
    state: FarmState,
    *,
    needed: Collection[str] | None = None,
    exclude: Collection[str] = (),
) -> Plan:
    """Steps that make the observed state match the file: contexts, builder, nodes, BuildKits.

    `needed`: the platforms this run builds (None: all, as `farm up` needs); `exclude`:
    nodes to leave out (a node that died during a build). Both only matter to pools.
    """
    bname = config.builder.name
    driver = config.builder.driver
    # -- pools (reconcile/pools.py): buildx holds each platform's pin on its active node only
    view = pool_view(config, state, needed=needed, exclude=exclude)
    desired = pools.pinned_now(config.node_settings(), view)
    steps: list[Step] = []

    # -- contexts
    moved: set[str] = set()  # contexts whose engine changes
    for s in desired:
        if s.driver != "docker-container":
            continue  # remote and kubernetes nodes use no Docker context
        ctx = state.contexts.get(s.context)
        if not s.owns_context:
            if ctx is None:
                raise FarmError(
                    f'node "{s.name}": context "{s.context}" does not exist',
                    hint="create it (`docker context create`), or give the node an `endpoint` so the farm creates one",
                )
            steps.append(
                Step("context", s.context, Action.NOOP, f"the user's context, used as is ({ctx.host})", settings=s)
            )
            continue
        want_tls = _tls_wanted(s, state)
        if ctx is None:
            changes = [("endpoint", "", s.endpoint or "")]
            if want_tls:
                changes.append(("tls", "", ", ".join(k for k, _ in want_tls)))
            steps.append(
                Step("context", s.context, Action.CREATE, f"node {s.name} needs it", tuple(changes), settings=s)
            )
            continue
        if not ctx.owned:
            raise ForeignResource(
                f'context "{s.context}" exists and is not managed by buildkit-farm (node "{s.name}")',
                hint=f'remove or rename that context, or set `context = "{s.context}"` on node "{s.name}" to use it as is',
            )
        changes = []
        if ctx.host != s.endpoint:
            changes.append(("endpoint", ctx.host or "", s.endpoint or ""))
            moved.add(s.context)
        if ctx.tls != want_tls or ctx.skip_tls_verify:
            # Only which files differ is shown; never their content.
            old = {k for k, _ in ctx.tls}
            new = {k for k, _ in want_tls}
            differ = sorted(k for k in old | new if dict(ctx.tls).get(k) != dict(want_tls).get(k))
            changes.append(
                (
                    "tls",
                    ", ".join(sorted(old)) or "(none)",
                    f"{', '.join(sorted(new)) or '(none)'} (changed: {', '.join(differ) or 'skip-tls-verify'})",
                )
            )
        if changes:
            steps.append(
                Step(
                    "context",
                    s.context,
                    Action.UPDATE,
                    "endpoint or TLS changed; updated in place",
                    tuple(changes),
                    settings=s,
                )
            )
        else:
            steps.append(
                Step("context", s.context, Action.NOOP, f"{s.endpoint}, owned by the farm, up to date", settings=s)
            )

    # -- contexts the farm created for nodes that are gone from the file
    for name in _stale_contexts(desired, state):
        steps.append(Step("context", name, Action.REMOVE, "the farm created it for a node no longer in the file"))

    # -- builder
    observed = state.builder
    replace_builder = False
    if observed is not None and state.record is None:
        raise ForeignResource(
            f'a buildx builder "{observed.name}" exists but was not created by buildkit-farm',
            hint=f"remove it (`docker buildx rm {observed.name}`) or name the farm's builder differently",
        )
    wanted_names = {buildx_node_name(bname, s.name): s for s in desired}
    if observed is None:
        steps.append(Step("builder", bname, Action.CREATE, f"new, driver {driver}; claimed for the farm"))
    elif observed.driver != driver:
        replace_builder = True
        steps.append(
            Step(
                "builder",
                bname,
                Action.REPLACE,
                "the driver changed; buildx cannot change it in place (state volumes kept)",
                (("driver", observed.driver, driver),),
            )
        )
    else:
        node_diffs = {
            bn: _node_diff(s, observed.node(bn), state) for bn, s in wanted_names.items() if observed.node(bn)
        }
        must_rejoin = [bn for bn, (_, rejoin) in node_diffs.items() if rejoin]
        staying = [n for n in observed.nodes if n.name in wanted_names]
        # buildx cannot leave its last node: then recreating the builder is the only way.
        if not staying or (must_rejoin and len(staying) == 1):
            replace_builder = True
            steps.append(
                Step(
                    "builder",
                    bname,
                    Action.REPLACE,
                    "buildx cannot leave or rejoin its only node; recreated (state volumes kept)",
                )
            )
        else:
            steps.append(Step("builder", bname, Action.NOOP, f"exists with driver {driver}"))

    # -- nodes
    if observed is not None and not replace_builder:
        for n in observed.nodes:
            if n.name not in wanted_names:
                steps.append(
                    Step(
                        "node",
                        _file_name(bname, n.name),
                        Action.REMOVE,
                        "no longer in the file; it leaves the builder",
                        (("endpoint", n.endpoint, ""),),
                        buildx_node=n.name,
                        where=n.endpoint,
                    )
                )
    for s in desired:
        bn = buildx_node_name(bname, s.name)
        on = None if (observed is None or replace_builder) else observed.node(bn)
        if s.name in view.spare:
            steps.append(_spare_node_step(s, on, state, desired, view, bn))
            continue
        if on is None:
            changes = [("endpoint", "", buildx_endpoint(s))]
            if s.platforms:
                changes.append(("platforms", "", ", ".join(s.platforms)))
            # A node the farm had, rejoining (it left while down): a build may do it by itself.
            known = state.record is not None and bn in state.record.nodes
            rejoin_pool = observed is not None and not replace_builder and known
            steps.append(
                Step(
                    "node",
                    s.name,
                    Action.CREATE,
                    f"joins the builder as {bn}",
                    tuple(changes),
                    mode="join" if rejoin_pool else "",
                    settings=s,
                    buildx_node=bn,
                )
            )
            continue
        changes, rejoin = _node_diff(s, on, state)
        pool_step = _pool_pin_step(s, on, changes, desired, view, bn)
        if pool_step is not None:
            steps.append(pool_step)
        elif changes:
            mode = "rejoin" if rejoin else "append"
            why = (
                "updated in place (--append --node)" if not rejoin else "a setting must be cleared: leaves and rejoins"
            )
            steps.append(
                Step("node", s.name, Action.UPDATE, why, tuple(changes), mode=mode, settings=s, buildx_node=bn)
            )
        else:
            steps.append(
                Step("node", s.name, Action.NOOP, "endpoint, platforms and settings match", settings=s, buildx_node=bn)
            )

    # -- BuildKit containers
    if observed is not None and not replace_builder:
        for n in observed.nodes:
            if n.name in wanted_names:
                continue
            bk = state.buildkits.get(n.name)
            if bk is not None and bk.status == "unreachable":
                raise _unreachable(_file_name(bname, n.name), bk, n.endpoint)
            if bk is None or bk.status == "missing":
                continue
            steps.append(
                Step(
                    "buildkit",
                    _file_name(bname, n.name),
                    Action.REMOVE,
                    "its node leaves; container removed, state volume kept",
                    buildx_node=n.name,
                    where=n.endpoint,
                )
            )
    for s in desired:
        if s.driver != "docker-container":
            continue  # only docker-container nodes have a BuildKit container the farm can see
        bn = buildx_node_name(bname, s.name)
        fp = settings_fingerprint(s)
        bk = state.buildkits.get(bn)
        if replace_builder:
            steps.append(
                Step(
                    "buildkit",
                    s.name,
                    Action.CREATE,
                    "started with the new builder (state volume reused)",
                    settings=s,
                    buildx_node=bn,
                    where=s.context,
                )
            )
            continue
        if s.context in moved:
            steps.append(
                Step(
                    "buildkit",
                    s.name,
                    Action.UPDATE,
                    "its endpoint moves: started on the new engine (the old container is removed)",
                    mode="move",
                    settings=s,
                    buildx_node=bn,
                    where=s.context,
                )
            )
            continue
        if s.name in view.spare:
            why = (
                f"{bk.status}: {bk.error}" if bk is not None and bk.status == "unreachable" else "left out of this run"
            )
            steps.append(Step("buildkit", s.name, Action.NOOP, f"{why}; {_standing_in(s.name, view)}", settings=s))
        elif bk is None or bk.status == "missing":
            steps.append(
                Step(
                    "buildkit",
                    s.name,
                    Action.CREATE,
                    "no BuildKit container yet; bootstrapped",
                    settings=s,
                    buildx_node=bn,
                    where=s.context,
                )
            )
        elif bk.status == "unreachable":
            raise _unreachable(s.name, bk, s.endpoint or s.context)
        elif bk.status != "running" and bk.settings == fp:
            steps.append(
                Step(
                    "buildkit",
                    s.name,
                    Action.UPDATE,
                    f"container is {bk.status}; started",
                    mode="start",
                    settings=s,
                    buildx_node=bn,
                    where=s.context,
                )
            )
        elif bk.settings == fp and (drift := runs_differently(s, bk)):
            steps.append(
                Step(
                    "buildkit",
                    s.name,
                    Action.UPDATE,
                    f"runs with other settings than the file's ({drift}); restarted, state volume kept",
                    mode="restart",
                    settings=s,
                    buildx_node=bn,
                    where=s.context,
                )
            )
        elif bk.settings != fp:
            why = (
                "settings changed; restarted alone, state volume kept"
                if bk.settings
                else "the settings it was created with are unknown; restarted, state volume kept"
            )
            steps.append(
                Step(
                    "buildkit",
                    s.name,
                    Action.UPDATE,
                    why,
                    (("settings", bk.settings or "(unknown)", fp),),
                    mode="restart",
                    settings=s,
                    buildx_node=bn,
                    where=s.context,
                )
            )
        else:
            steps.append(
                Step(
                    "buildkit",
                    s.name,
                    Action.NOOP,
                    f"running BuildKit {bk.version or '(version unknown)'}, settings applied (container {(bk.container_id or '')[:12]})",
                    settings=s,
                    buildx_node=bn,
                    where=s.context,
                )
            )

    _leave_if_blocking(steps, state, view)
    return Plan(builder=bname, driver=driver, steps=_ordered(steps))


# ---------------------------------------------------------------------------- pools
# buildx (0.13) loads every node of a builder on `buildx create --append` and rolls back
# when one does not answer, so a down node leaves the builder before a pin can move; it
# rejoins when it answers (its BuildKit container and state stay on its engine).
def pool_view(
    config: FarmConfig, state: FarmState, *, needed: Collection[str] | None = None, exclude: Collection[str] = ()
) -> pools.PoolView:
    """The pools as observed; `NoHealthyNode` when a needed platform's pool has no healthy node."""
    status_of, errors = {}, {}
    for s in config.node_settings():
        bk = state.buildkits.get(buildx_node_name(config.builder.name, s.name))
        if bk is not None:
            status_of[s.name] = bk.status
            errors[s.name] = f"{bk.status}: {bk.error}" if bk.error else bk.status
    view = pools.resolve(config.node_settings(), status_of, needed=needed, exclude=exclude)
    stranded = [p for p in view.stranded(needed) if len(p.members) > 1]
    if stranded:
        raise pools.no_healthy_node(stranded, errors)
    return view


def _standing_in(name: str, view: pools.PoolView) -> str:
    covered = [f"{p.platform} on {p.active}" for p in view.pools if name in p.members and p.active]
    return "its pools build " + ", ".join(covered) if covered else "not needed by this run"


def _spare_node_step(
    s: NodeSettings, on: ObservedNode | None, state: FarmState, desired, view: pools.PoolView, bn: str
) -> Step:
    """A down node the farm can do without: reported, never an error; it waits as it is."""
    bk = state.buildkits.get(bn)
    down = f"down ({bk.error})" if bk is not None and bk.status == "unreachable" else "left out of this run"
    if on is None:
        return Step("node", s.name, Action.NOOP, f"{down}; joins when it answers; {_standing_in(s.name, view)}")
    taken = pools.pins_taken(s.name, on.platforms, desired)
    moves = ", ".join(f"{p} to {n}" for p, n in taken.items())
    return Step(
        "node",
        s.name,
        Action.NOOP,
        f"{down}; " + (f"its pins move ({moves})" if moves else _standing_in(s.name, view)),
        settings=s,
        buildx_node=bn,
        where=on.endpoint,
    )


def _pool_pin_step(s: NodeSettings, on: ObservedNode, changes, desired, view: pools.PoolView, bn: str) -> Step | None:
    """A pin that moves inside a pool: `--append --platform` here, or nothing here when another
    node's append takes this node's pins away (buildx moves a pin). None: not a pool move."""
    if [c[0] for c in changes] != ["platforms"]:
        return None
    pooled = {p.platform for p in view.pools if len(p.members) > 1}
    old, new = set(on.platforms), set(s.platforms)
    if not (old ^ new) <= pooled:
        return None
    taken = pools.pins_taken(s.name, old - new, desired)
    if new <= old and set(taken) == old - new:
        moves = ", ".join(f"{p} to {n}" for p, n in taken.items())
        return Step(
            "node",
            s.name,
            Action.NOOP,
            f"its pool pins move ({moves}) with that node's --append",
            buildx_node=bn,
            settings=s,
        )
    if not new:
        return None
    active = ", ".join(sorted(new - old))
    return Step(
        "node",
        s.name,
        Action.UPDATE,
        f"pool: now the active node for {active or 'fewer platforms'}; the pin moves in place (--append)",
        tuple(changes),
        mode="pin",
        settings=s,
        buildx_node=bn,
    )


def _leave_if_blocking(steps: list[Step], state: FarmState, view: pools.PoolView) -> None:
    """A down node still in the builder leaves it when anything else changes (an append or
    a bootstrap: buildx loads every node of the builder for both)."""
    if not any(st.action is not Action.NOOP for st in steps):
        return
    for i, st in enumerate(steps):
        bk = state.buildkits.get(st.buildx_node or "")
        if (
            st.kind == "node"
            and st.name in view.spare
            and st.buildx_node
            and bk is not None
            and bk.status == "unreachable"
        ):
            steps[i] = replace(
                st,
                action=Action.REMOVE,
                mode="leave",
                reason="down; leaves the builder so the others can change (buildx loads every node), "
                f"rejoins when it answers; {_standing_in(st.name, view)}",
            )


def _stale_contexts(desired: tuple[NodeSettings, ...], state: FarmState) -> list[str]:
    """Contexts this builder's record says the farm created, still there, owned, unused."""
    if state.record is None:
        return []
    wanted = {s.context for s in desired}
    out = []
    for name in state.record.contexts:
        ctx = state.contexts.get(name)
        if name in wanted or ctx is None or not ctx.owned or state.context_users.get(name):
            continue
        out.append(name)
    return out


def _file_name(builder: str, buildx_node: str) -> str:
    prefix = f"{builder}-".lower()
    return buildx_node[len(prefix) :] if buildx_node.startswith(prefix) else buildx_node


def _node_diff(s: NodeSettings, on: ObservedNode, state: FarmState) -> tuple[list[tuple[str, str, str]], bool]:
    """What differs between a desired node and buildx's stored one, and whether something must be cleared."""
    changes: list[tuple[str, str, str]] = []
    rejoin = False
    # buildx stores the `default` context as its host URL, not by name.
    same_default = buildx_endpoint(s) == "default" and "://" in on.endpoint
    if on.endpoint != buildx_endpoint(s) and not same_default:
        changes.append(("endpoint", on.endpoint, buildx_endpoint(s)))
    if sorted(on.platforms) != sorted(s.platforms):
        changes.append(("platforms", ", ".join(on.platforms) or "(detected)", ", ".join(s.platforms) or "(detected)"))
        rejoin |= not s.platforms  # `--append` cannot clear pinned platforms
    if on.driver_opts != tuple(sorted(s.driver_opts)):
        changes.append(("driver_opts", _kv(on.driver_opts), _kv(s.driver_opts)))
        rejoin |= not s.driver_opts
    if on.flags != buildx_flags(s):
        changes.append(("buildkitd_flags", " ".join(on.flags) or "(none)", " ".join(buildx_flags(s)) or "(none)"))
        rejoin |= not buildx_flags(s)
    if on.has_config != bool(s.buildkitd_config):
        changes.append(
            ("buildkitd_config", "set" if on.has_config else "(none)", "set" if s.buildkitd_config else "(none)")
        )
        rejoin |= not s.buildkitd_config
    else:
        # buildx rewrites the stored config, so its text is compared through the record.
        entry = state.record.nodes.get(on.name) if state.record else None
        if s.buildkitd_config and (entry is None or entry.settings != settings_fingerprint(s)):
            changes.append(("buildkitd_config", "(as stored)" if entry is None else "changed", "from the file"))
    return changes, rejoin


def _kv(pairs) -> str:
    return ", ".join(f"{k}={v}" for k, v in pairs) or "(none)"


_ORDER = {
    ("context", Action.CREATE): 0,
    ("context", Action.UPDATE): 0,
    ("context", Action.NOOP): 0,
    ("context", Action.REMOVE): 8,
    ("builder", Action.REPLACE): 1,
    ("builder", Action.CREATE): 1,
    ("builder", Action.NOOP): 1,
    ("node", Action.REMOVE): 2,
    ("node", Action.UPDATE): 4,
    ("node", Action.CREATE): 4,
    ("node", Action.NOOP): 4,
    ("buildkit", Action.REMOVE): 5,
    ("buildkit", Action.UPDATE): 6,
    ("buildkit", Action.CREATE): 6,
    ("buildkit", Action.NOOP): 6,
}


def _ordered(steps: list[Step]) -> tuple[Step, ...]:
    # Leave before append (a renamed node keeps its endpoint: no "duplicate endpoint").
    return tuple(sorted(steps, key=lambda st: _ORDER.get((st.kind, st.action), 9)))


# ---------------------------------------------------------------------------- down
def make_down_plan(config: FarmConfig, state: FarmState, *, keep_state: bool = False) -> Plan:
    """Remove the builder and the contexts the farm owns; nothing else."""
    bname = config.builder.name
    steps: list[Step] = []
    if state.builder is None:
        steps.append(Step("builder", bname, Action.NOOP, "does not exist"))
    elif state.record is None:
        steps.append(Step("builder", bname, Action.NOOP, "not created by buildkit-farm; left alone"))
    else:
        what = "state volumes kept" if keep_state else "state volumes removed"
        steps.append(
            Step(
                "builder",
                bname,
                Action.REMOVE,
                f"its BuildKit containers removed, {what}",
                mode="keep-state" if keep_state else "",
            )
        )
    for s in config.node_settings():
        ctx = state.contexts.get(s.context)
        if ctx is None:
            continue
        if not s.owns_context or not ctx.owned:
            steps.append(Step("context", s.context, Action.NOOP, "not owned by the farm; left alone"))
        elif state.context_users.get(s.context):
            steps.append(
                Step(
                    "context",
                    s.context,
                    Action.NOOP,
                    f"still used by builder {', '.join(state.context_users[s.context])}; left",
                )
            )
        else:
            steps.append(Step("context", s.context, Action.REMOVE, "owned by the farm", settings=s))
    for name in _stale_contexts(config.node_settings(), state):
        steps.append(Step("context", name, Action.REMOVE, "the farm created it for a node no longer in the file"))
    return Plan(builder=bname, driver=config.builder.driver, steps=tuple(steps))


# ---------------------------------------------------------------------------- verify
@dataclass(frozen=True)
class NodeStatus:
    """One node as `farm status` and the build see it."""

    name: str
    buildx_node: str
    context: str
    endpoint: str | None
    status: str  # running | stopped | missing | unreachable
    version: str | None
    pinned: tuple[str, ...]
    detected: tuple[str, ...]
    native: tuple[str, ...]
    emulated: tuple[str, ...]
    error: str | None = None

    @property
    def platforms(self) -> tuple[str, ...]:
        """What the node builds: its pinned platforms, else all it detected."""
        return self.pinned or self.detected

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "buildx_node": self.buildx_node,
            "context": self.context,
            "endpoint": self.endpoint,
            "status": self.status,
            "buildkit_version": self.version,
            "pinned": list(self.pinned),
            "detected": list(self.detected),
            "native": list(self.native),
            "emulated": list(self.emulated),
            **({"error": self.error} if self.error else {}),
        }


def node_statuses(config: FarmConfig, state: FarmState) -> tuple[NodeStatus, ...]:
    out = []
    for s in config.node_settings():
        bn = buildx_node_name(config.builder.name, s.name)
        bk = state.buildkits.get(bn)
        ctx = state.contexts.get(s.context)
        detected = bk.platforms if bk else ()
        native, emulated = split_native(detected)
        out.append(
            NodeStatus(
                name=s.name,
                buildx_node=bn,
                context=s.context,
                endpoint=s.endpoint or (ctx.host if ctx else None),
                status=bk.status if bk else ("missing" if s.driver == "docker-container" else "not observed"),
                version=bk.version if bk else None,
                pinned=s.platforms,
                detected=detected,
                native=native,
                emulated=emulated,
                error=bk.error if bk else None,
            )
        )
    return tuple(out)


def verify(statuses: tuple[NodeStatus, ...]) -> tuple[str, ...]:
    """Problems that make the farm unusable: a node not running, or a pinned platform it lacks."""
    problems = []
    for n in statuses:
        if n.status == "not observed":
            continue
        if n.status != "running":
            problems.append(f'node "{n.name}" is {n.status}' + (f": {n.error}" if n.error else ""))
        elif n.version is None:
            problems.append(
                f'node "{n.name}": BuildKit did not report its version' + (f" ({n.error})" if n.error else "")
            )
        else:
            missing = [p for p in n.pinned if p not in n.detected]
            if missing:
                problems.append(
                    f'node "{n.name}": pinned {", ".join(missing)} not among the platforms BuildKit detected '
                    f"({', '.join(n.detected) or 'none'})"
                )
    return tuple(problems)
