"""The post-push checks' pure parts."""

from __future__ import annotations

from buildkit_farm.builds import check, verify


def test_missing_platforms():
    assert check.missing_platforms(["linux/amd64", "linux/arm64"], ["linux/amd64"]) == ["linux/arm64"]
    assert check.missing_platforms(["linux/amd64"], ["linux/amd64", "unknown/unknown"]) == []


def test_verify_run_reports_each_exit_code_and_runs_by_digest():
    calls = []

    def runner(image, *, platform, context, command, docker_config):
        calls.append((image, platform, context, command))
        return (0, "arch: x86_64") if platform == "linux/amd64" else (1, "exec format error")

    jobs = [("linux/amd64", "node1", "ctx1", False), ("linux/arm64", "node2", "ctx2", False)]
    results = verify.verify_run(
        lambda p: f"r/app@sha256:{p[-5:]}", jobs, command=None, docker_config=None, runner=runner
    )
    assert sorted(calls) == [
        ("r/app@sha256:amd64", "linux/amd64", "ctx1", None),
        ("r/app@sha256:arm64", "linux/arm64", "ctx2", None),
    ]
    assert [(r["platform"], r["exit_code"]) for r in results] == [("linux/amd64", 0), ("linux/arm64", 1)]
    assert [r["platform"] for r in verify.failed_runs(results)] == ["linux/arm64"]


def test_a_node_that_cannot_pull_is_a_farm_problem_not_a_failing_cmd():
    import pytest

    from buildkit_farm.errors import BuildError

    def runner(image, *, platform, context, command, docker_config):
        raise verify.NodeUnusable(context, "ssh: connect to host 127.0.0.1 port 2222: Connection refused")

    with pytest.raises(BuildError) as err:
        verify.verify_run(
            lambda p: "r/app@sha256:1",
            [("linux/arm64", "node2", "node2", False)],
            command=None,
            docker_config=None,
            runner=runner,
        )
    assert 'could not pull r/app@sha256:1 (linux/arm64) on node "node2": ssh: connect' in err.value.message
