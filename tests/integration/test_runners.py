"""One farm, many runners: separate Docker config folders stand for separate CI machines.

Every runner uses the same builder name and the same lab nodes; what they agree on lives on
the nodes (the stamp in each BuildKit container's environment, node locks, drains).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import tomli_w
from test_up import FARM, Farm

from buildkit_farm.farmfile.toml import tomllib

pytestmark = pytest.mark.integration

SLOW = 'FROM {base}\nARG WHO\nRUN echo "$WHO" && sleep {seconds} && echo done > /done\n'


@pytest.fixture
def runners(lab, docker_config, unique_name, tmp_path, tmp_path_factory):
    """Three runners (A, B, C) of one farm: same builder and nodes, each its own Docker config."""
    builder = unique_name("run")
    data = lab.farm_data(builder)
    made = []
    for i, who in enumerate("abc"):
        config = Path(docker_config) if i == 0 else tmp_path_factory.mktemp(f"dc-{who}")
        where = tmp_path / who
        where.mkdir()
        made.append(Farm(where, config, builder, copy.deepcopy(data)))
    yield made
    made[0].run("down", "--force")
    for f in made[1:]:  # their builders' files only; the containers went with A's down
        f.docker("buildx", "rm", "--keep-state", "--force", builder, check=False)


def lab_node1(farm: Farm) -> str:
    return farm.env.get("FARM_LAB_NODE1", "unix:///var/run/docker.sock")


def container_ids(farm: Farm) -> dict[str, str | None]:
    return {n: farm.container_id(n) for n in ("node1", "node2")}


def env_of(farm: Farm, node: str) -> dict[str, str]:
    name = f"buildx_buildkit_{farm.builder}-{node}".lower()
    out = farm.docker("container", "inspect", "--format", "{{json .Config.Env}}", name, context=node).stdout
    return dict(e.split("=", 1) for e in json.loads(out))


def steps(farm: Farm, *args: str) -> list[dict]:
    return json.loads(farm.ok("plan", "--json", *args).stdout)["result"]["steps"]


def changes(farm: Farm, *args: str) -> list[tuple[str, str, str]]:
    return [(s["symbol"], s["kind"], s["name"]) for s in steps(farm, *args) if s["action"] != "no-op"]


def test_a_fresh_runner_reads_the_settings_from_the_nodes(runners):
    a, b, _ = runners
    a.ok("up")
    env = env_of(a, "node1")
    assert env["BUILDKIT_FARM_NODE"] == f"{a.builder}/node1" and env["BUILDKIT_FARM_SETTINGS"]
    before = container_ids(a)
    # B never saw this farm: no record, no builder of its own. Its plan still knows the nodes.
    assert not (b.docker_config / "buildkit-farm").exists()
    plan = steps(b)
    buildkits = [s for s in plan if s["kind"] == "buildkit"]
    assert [s["action"] for s in buildkits] == ["no-op", "no-op"], plan
    assert "unknown" not in json.dumps(plan)
    assert "Nothing to do on the nodes" in b.ok("plan").stdout
    b.ok("up")
    assert "No changes" in b.ok("plan").stdout
    assert container_ids(b) == before
    # `farm down` takes the nodes' locks too, and leaves none behind (it removes the contexts first).
    a.ok("down")
    left = subprocess.run(
        [
            "docker",
            "-H",
            lab_node1(a),
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            f"name=buildkit-farm-lock_{a.builder}",
        ],
        capture_output=True,
        text=True,
    ).stdout
    assert left.strip() == "", left


def over_tcp_and_tls(farm: Farm, lab, *, relative: bool = False) -> None:
    """node2 reached over tcp+TLS (the same engine as over ssh); with `relative`, the TLS files
    named relative to the farm file's folder."""
    files = {"ca": lab.ca, "cert": lab.client_cert, "key": lab.client_key}
    farm.node("node2")["endpoint"] = lab.node2_tcp
    farm.node("node2")["tls"] = {k: os.path.relpath(f, farm.tmp) if relative else str(f) for k, f in files.items()}
    farm.write()


def test_a_fresh_runner_reads_a_tcp_tls_node_through_its_endpoint(runners, lab):
    """Before its context exists, B reads the tcp+TLS node with the file's TLS files: A's
    BuildKit container there is kept, not bootstrapped again."""
    a, b, _ = runners
    over_tcp_and_tls(a, lab)
    over_tcp_and_tls(b, lab, relative=True)
    a.ok("up")
    before = container_ids(a)
    assert all(before.values()), before
    b.clear_calls()
    plan = steps(b)
    buildkits = {s["name"]: s["action"] for s in plan if s["kind"] == "buildkit"}
    assert buildkits == {"node1": "no-op", "node2": "no-op"}, plan
    assert "unknown" not in json.dumps(plan)
    through = [c for c in b.calls() if f"--host {lab.node2_tcp} --tlsverify --tlscacert {lab.ca}" in c]
    assert through and all(f"--tlscert {lab.client_cert} --tlskey {lab.client_key}" in c for c in through), b.calls()
    assert "Nothing to do on the nodes" in b.ok("plan").stdout
    b.ok("up")
    assert container_ids(b) == before
    assert "No changes" in b.ok("plan").stdout


def test_a_changed_setting_from_a_fresh_runner_converges_once_and_is_not_changed_back(runners):
    a, b, c = runners
    a.ok("up")
    before = container_ids(a)
    b.data["builder"]["buildkitd_flags"] = "--debug"
    b.write()
    planned = [s for s in steps(b) if s["kind"] == "buildkit" and s["action"] != "no-op"]
    assert planned and all(
        {"field": "buildkitd_flags", "old": "(none)", "new": "--debug"} in s["changes"] for s in planned
    ), planned
    up = b.run("up")
    assert up.returncode == 0, up.stdout + up.stderr  # converged on the first run
    after = container_ids(b)
    assert all(after[n] != before[n] for n in after)
    assert "No changes" in b.ok("plan").stdout
    assert "--debug" in b.docker("container", "inspect", f"buildx_buildkit_{b.builder}-node1", context="node1").stdout

    # A, still on the old file, sees nodes newer than its file: it names the setting and leaves them.
    plan = a.ok("plan").stdout
    assert "runs settings from a newer farm file" in plan and "buildkitd_flags" in plan, plan
    assert "No changes" in plan or "0 to" not in plan
    up_a = a.run("up")
    assert up_a.returncode == 0, up_a.stdout + up_a.stderr
    assert container_ids(a) == after
    # A runner with B's file, fresh, converges on its first `farm up` too.
    c.data = copy.deepcopy(b.data)
    c.write()
    c.ok("up")
    assert container_ids(c) == after
    # --reclaim applies A's settings after all; then B sees a newer node and leaves it.
    a.ok("up", "--reclaim")
    assert "--debug" not in " ".join(env_of(a, "node1"))  # env carries no flags; the cmd does
    reclaimed = container_ids(a)
    assert all(reclaimed[n] != after[n] for n in after)
    assert "runs settings from a newer farm file" in b.ok("plan").stdout
    b.ok("up")
    assert container_ids(b) == reclaimed


def start_slow_build(farm: Farm, tmp: Path, lab, seconds: int = 20) -> subprocess.Popen:
    """A build on both nodes of the farm whose RUN takes `seconds` (no push: cache only)."""
    ctx = tmp / "slow"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(SLOW.format(base=lab.base, seconds=seconds))
    return subprocess.Popen(
        ["docker", "buildx", "build", "--builder", farm.builder.lower(), "--platform", "linux/amd64,linux/arm64"]
        + ["--build-arg", f"WHO={time.time()}", "--progress", "plain", str(ctx)],
        env=farm.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_running_build(farm: Farm, node: str, timeout: float = 60) -> None:
    name = f"buildx_buildkit_{farm.builder}-{node}".lower()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = farm.docker("exec", name, "buildctl", "debug", "histories", context=node, check=False).stdout
        if "STARTED" in out or any(line and "\t\t" in line for line in out.splitlines()[1:]):
            return
        time.sleep(0.5)
    raise AssertionError(f"no build started on {node}")


def test_up_waits_for_a_running_build_then_converges(runners, lab, tmp_path):
    a, b, _ = runners
    a.ok("up")
    build = start_slow_build(a, tmp_path, lab, seconds=20)
    try:
        wait_for_running_build(a, "node1")
        b.data["builder"]["buildkitd_flags"] = "--debug"
        b.write()
        # Past a short timeout: exit 1 naming node and build, nothing changed.
        before = container_ids(a)
        short = b.run("up", "--wait-timeout", "2")
        assert short.returncode == 1, short.stdout + short.stderr
        assert "builds still run" in short.stderr and 'node "node1"' in short.stderr and "build " in short.stderr
        assert container_ids(a) == before
        t0 = time.monotonic()
        up = b.run("up", "--wait-timeout", "120")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "waiting for 1 running build" in up.stderr, up.stderr
        assert time.monotonic() - t0 > 3  # it did wait
        out, _ = build.communicate(timeout=120)
        assert build.returncode == 0, out  # A's build finished on every platform
    finally:
        if build.poll() is None:
            build.kill()
            build.communicate()
    assert "No changes" in b.ok("plan").stdout


def test_a_killed_lock_holder_is_taken_over(runners, lab, tmp_path):
    a, b, c = runners
    a.ok("up")
    build = start_slow_build(a, tmp_path, lab, seconds=25)
    try:
        wait_for_running_build(a, "node1")
        b.data["builder"]["buildkitd_flags"] = "--debug"
        b.write()
        proc = subprocess.Popen(
            [FARM, "up", "--wait-timeout", "120", "--lock-ttl", "8", "-f", str(b.file)],
            env=b.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=b.tmp,
        )
        lock = f"buildkit-farm-lock_{b.builder}-node1".lower()
        deadline = time.monotonic() + 60
        while b.docker("container", "inspect", lock, context="node1", check=False).returncode != 0:
            assert time.monotonic() < deadline, "B never took the node lock"
            time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)  # killed while holding the lock, waiting for A's build
        proc.communicate()
        c.data = copy.deepcopy(b.data)
        c.write()
        labels = b.docker("container", "inspect", "--format", "{{json .Config.Labels}}", lock, context="node1").stdout
        assert f"pid {proc.pid}" in labels  # it says who holds it
        up = c.run("up", "--wait-timeout", "120")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "took over a stale lock" in up.stderr, up.stderr
    finally:
        if build.poll() is None:
            build.kill()
        build.communicate()


def test_three_runners_converge_first_time_and_build_at_once(runners, lab, registry, tmp_path):
    ctx = tmp_path / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f'FROM {lab.base}\nARG WHO\nRUN echo "$WHO" > /who && sleep 3\n')
    platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    repos = {}
    for f in runners:
        repos[f.tmp.name] = registry.repo(f"runner-{f.builder}-{f.tmp.name}")
        f.data["target"] = [
            {"name": f"t{f.tmp.name}", "context": str(ctx), "platforms": platforms, "tags": [f"{repos[f.tmp.name]}:1"]}
        ]
        f.write()
    ids = None
    for f in runners:  # one after the other, each fresh: each converges on its first `farm up`
        done = f.run("up")
        assert done.returncode == 0, done.stdout + done.stderr
        ids = ids or container_ids(f)
        assert container_ids(f) == ids
    env = {**lab.env}
    builds = [
        subprocess.Popen(
            [FARM, "build", "-f", str(f.file), "--json", "--progress", "plain", "--build-arg", f"WHO={f.tmp.name}"],
            env={**f.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=f.tmp,
        )
        for f in runners
    ]
    outs = [b.communicate(timeout=900) for b in builds]
    for b, (out, err) in zip(builds, outs):
        assert b.returncode == 0, out[-2000:] + err[-3000:]
        (target,) = json.loads(out)["result"]["targets"]
        assert target["ok"] and {p["platform"] for p in target["platforms"]} == set(platforms)
    for f in runners:
        shown = subprocess.run(
            [FARM, "inspect", f"{repos[f.tmp.name]}:1", "--json"], env={**f.env, **env}, capture_output=True, text=True
        )
        variants = {
            v["platform"] for v in json.loads(shown.stdout)["result"]["variants"] if not v.get("is_attestation")
        }
        assert variants == set(platforms), f.tmp.name
    assert container_ids(runners[0]) == ids  # no BuildKit container restarted


def test_drain_and_undrain_a_pool_node_seen_by_every_runner(lab, docker_config, unique_name, registry, tmp_path):
    from test_pools import PoolFarm, _arm64, _pool

    if subprocess.run(["docker", "-H", lab.node3, "version"], capture_output=True, timeout=20).returncode != 0:
        pytest.fail(f"node3 does not answer at {lab.node3}: run `lab/lab.sh up node3`")
    farm = PoolFarm(
        lab,
        tmp_path,
        Path(docker_config),
        unique_name("drain"),
        registry.repo(f"drain-{unique_name}"),
        [{"name": "arm2", "endpoint": lab.node2}, {"name": "arm3", "endpoint": lab.node3}],
    )
    other = {**farm.env, "DOCKER_CONFIG": str(tmp_path / "other-runner")}  # another runner drains it
    try:
        farm.up()
        assert _arm64(farm.build())["node"] == "arm2"
        drained = subprocess.run(
            [FARM, "drain", "arm2", "--reason", "kernel update", "-f", str(farm.file)],
            env=other,
            capture_output=True,
            text=True,
        )
        assert drained.returncode == 0 and "arm2: drained" in drained.stdout, drained.stdout + drained.stderr
        status = farm.status()
        arm2 = next(n for n in status["nodes"] if n["name"] == "arm2")
        assert "kernel update" in arm2["drained"] and _pool(status)["active"] == "arm3"
        text = farm.run("status").stdout
        assert "running (drained)" in text and "farm undrain arm2" in text
        result = farm.build()
        assert _arm64(result)["node"] == "arm3", result.stderr  # the partner builds while arm2 is drained
        assert farm.pushed_platforms() == {"linux/amd64", "linux/arm64"}
        # amd64 has no other node: a build that needs it is refused while "amd" is drained.
        subprocess.run([FARM, "drain", "amd", "-f", str(farm.file)], env=other, check=True, capture_output=True)
        refused = farm.run(*farm.build_args("amd-only"))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert 'node "amd" is drained' in refused.stderr and "no other node" in refused.stderr
        for node in ("amd", "arm2"):
            done = subprocess.run(
                [FARM, "undrain", node, "-f", str(farm.file)], env=other, capture_output=True, text=True
            )
            assert done.returncode == 0 and f"{node}: undrained" in done.stdout, done.stderr
        assert _arm64(farm.build())["node"] == "arm2"  # undrained, it builds again
    finally:
        farm.run("down", "--force")


def build_records(host: str, builder: str, node: str) -> dict[str, bool]:
    """BuildKit's own build records on a node (`buildctl debug histories`): ref -> still running."""
    container = f"buildx_buildkit_{builder}-{node}".lower()
    done = subprocess.run(
        ["docker", "-H", host, "exec", container, "buildctl", "debug", "histories", "--format", "{{json .}}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    records = [(json.loads(line) or {}).get("record") or {} for line in done.stdout.splitlines() if line.strip()]
    return {r["Ref"]: not r.get("CompletedAt") for r in records if r.get("Ref")}


def test_a_drained_sole_node_takes_no_build_its_platform_is_emulated_where_allowed(
    lab, docker_config, unique_name, registry, tmp_path
):
    """arm64's only node is drained: a target that allows emulating arm64 builds it on node1
    (QEMU), the drained node's BuildKit gets no build (its running one finishes), a target
    that does not allow it is refused, and once undrained arm64 builds natively there again."""
    from test_pools import PoolFarm, _arm64

    builder = unique_name("emu")
    farm = PoolFarm(
        lab,
        tmp_path,
        Path(docker_config),
        builder,
        registry.repo(f"emu-{unique_name}"),
        [{"name": "arm2", "endpoint": lab.node2}],
    )
    data = tomllib.loads(farm.file.read_text())
    app, amd_only = data["target"]
    app["allow_emulation"] = ["linux/arm64"]
    strict = {**amd_only, "name": "arm-strict", "platforms": ["linux/arm64"], "tags": [f"{farm.repo}-arm:latest"]}
    data["target"] = [app, amd_only, strict]
    farm.file.write_text(tomli_w.dumps(data))
    other = {**farm.env, "DOCKER_CONFIG": str(tmp_path / "other-runner")}  # another runner drains it
    slow = None
    try:
        farm.up()
        native = _arm64(farm.build())
        assert (native["node"], native["emulated"]) == ("arm2", False)  # pinned: native, emulation or not

        # A build running on arm2 (started through this runner's builder) when it is drained.
        slow = start_slow_build(SimpleNamespace(builder=builder, env=farm.env), tmp_path, lab, seconds=15)
        deadline = time.monotonic() + 60
        while not any(build_records(lab.node2_socket, builder, "arm2").values()):
            assert time.monotonic() < deadline, "the slow build never started on arm2"
            time.sleep(0.5)
        drained = subprocess.run(
            [FARM, "drain", "arm2", "--reason", "kernel update", "-f", str(farm.file)],
            env=other,
            capture_output=True,
            text=True,
        )
        assert drained.returncode == 0, drained.stdout + drained.stderr
        assert "arm2: drained" in drained.stdout and "1 build(s) still running" in drained.stdout, drained.stdout
        before = build_records(lab.node2_socket, builder, "arm2")

        result = farm.build()
        arm = _arm64(result)
        assert (arm["node"], arm["emulated"]) == ("amd", True), result.stderr
        assert 'node "arm2" is drained' in arm["why_emulated"] and "kernel update" in arm["why_emulated"]
        assert 'linux/arm64: node "arm2" is drained' in result.stderr and '"amd" will emulate it' in result.stderr
        assert farm.pushed_platforms() == {"linux/amd64", "linux/arm64"}
        cgroup = farm.built_in(arm["digest"])
        assert farm.container_id("amd", lab.node1) in cgroup  # its RUN ran in node1's BuildKit
        assert farm.container_id("arm2", lab.node2_socket) not in cgroup
        out, _ = slow.communicate(timeout=180)
        assert slow.returncode == 0, out  # the drained node's running build finished
        after = build_records(lab.node2_socket, builder, "arm2")
        assert set(after) == set(before), f"the drained node got a build: {set(after) - set(before)}"

        # This runner's builder no longer has arm2; the plan says why, `farm status` is as before.
        plan = farm.run("plan")
        assert plan.returncode == 0 and "No changes" in plan.stdout, plan.stdout + plan.stderr
        assert "drained" in plan.stdout and "not in this runner's builder" in plan.stdout, plan.stdout
        assert "running (drained)" in farm.run("status").stdout

        refused = farm.run(*farm.build_args("arm-strict"))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert 'target "arm-strict": linux/arm64: node "arm2" is drained' in refused.stderr, refused.stderr
        assert 'allow_emulation = ["linux/arm64"]' in refused.stderr
        assert set(build_records(lab.node2_socket, builder, "arm2")) == set(before)

        done = subprocess.run(
            [FARM, "undrain", "arm2", "-f", str(farm.file)], env=other, capture_output=True, text=True
        )
        assert done.returncode == 0 and "arm2: undrained" in done.stdout, done.stderr
        result = farm.build()
        back = _arm64(result)
        assert (back["node"], back["emulated"], back["why_emulated"]) == ("arm2", False, None), result.stderr
        assert farm.container_id("arm2", lab.node2_socket) in farm.built_in(back["digest"])
        assert set(build_records(lab.node2_socket, builder, "arm2")) > set(before)
    finally:
        if slow is not None and slow.poll() is None:
            slow.kill()
            slow.communicate()
        farm.run("down", "--force")


def fake_lock(farm: Farm, node: str, *, stale_in: float) -> None:
    """A lock as a runner on another machine leaves it (killed): only its expiry frees it."""
    name = f"buildx_buildkit_{farm.builder}-{node}".lower()
    image = farm.docker("container", "inspect", "--format", "{{.Image}}", name, context=node).stdout.strip()
    labels = {
        "by": "ci@elsewhere pid 4242 (docker config /home/ci/.docker)",
        "at": "2026-12-07T00:00:00Z",
        "expires": str(int(time.time() + stale_in)),
        "machine": "elsewhere/0000",
        "pid": "4242",
    }
    args = [x for k, v in labels.items() for x in ("--label", f"org.buildkit-farm.lock.{k}={v}")]
    farm.docker(
        "container", "create", "--name", f"buildkit-farm-lock_{farm.builder}-{node}".lower(), *args, image, context=node
    )


def test_a_lock_from_another_machine_is_waited_for_then_taken_over_when_stale(runners):
    a, b, _ = runners
    a.ok("up")
    b.data["builder"]["buildkitd_flags"] = "--debug"
    b.write()
    fake_lock(a, "node1", stale_in=120)
    short = b.run("up", "--lock-timeout", "2")
    assert short.returncode == 1, short.stdout + short.stderr
    assert 'node "node1" is locked by ci@elsewhere pid 4242' in short.stderr, short.stderr
    a.docker("container", "rm", f"buildkit-farm-lock_{a.builder}-node1".lower(), context="node1")
    fake_lock(a, "node1", stale_in=6)
    t0 = time.monotonic()
    up = b.run("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "waiting for the lock held by ci@elsewhere" in up.stderr and "took over a stale lock" in up.stderr
    assert time.monotonic() - t0 >= 4  # it waited for the stated time


def test_down_waits_for_a_running_build_unless_forced(runners, lab, tmp_path):
    a, b, _ = runners
    a.ok("up")
    b.ok("up")
    build = start_slow_build(a, tmp_path, lab, seconds=15)
    try:
        wait_for_running_build(a, "node1")
        before = container_ids(a)
        refused = b.run("down", "--wait-timeout", "2")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "builds still run" in refused.stderr and 'node "node1"' in refused.stderr
        assert container_ids(a) == before  # nothing removed
        out, _ = build.communicate(timeout=120)
        assert build.returncode == 0, out
    finally:
        if build.poll() is None:
            build.kill()
            build.communicate()
