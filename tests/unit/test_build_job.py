"""The whole run's semantics on plain data: per-target outcomes, --atomic, Ctrl-C mid-publish,
the summary table and the CI step summary (no Docker: the publisher is a stand-in)."""

from __future__ import annotations

import json
import signal
import threading
import types

import pytest

from buildkit_farm.builds import publish, report
from buildkit_farm.builds.resolve import BuildOptions, resolve
from buildkit_farm.errors import BuildError, RegistryError, UsageError


def _report(name: str, *, ok: bool = True, outcome: str = report.OUTCOME_PUBLISHED, error: str | None = None):
    r = report.TargetReport(target=name, tags=[f"r/{name}:1"], repo=f"r/{name}", ok=ok, outcome=outcome, error=error)
    r.platforms = [
        report.PlatformReport("linux/amd64", "node1", False, "v0.13", digest="sha256:" + "a" * 64),
        report.PlatformReport("linux/arm64", "node2", False, "v0.13", digest="sha256:" + "b" * 64),
    ]
    return r


def _target(name: str):
    return types.SimpleNamespace(name=name, tags=(f"r/{name}:1",))


def test_bad_shell_quoting_in_verify_cmd_is_a_usage_error():
    config = types.SimpleNamespace(builder=types.SimpleNamespace(driver="docker-container"), targets=())
    with pytest.raises(UsageError) as err:
        resolve(config, [], BuildOptions(verify_run=True, verify_cmd="echo 'x"), env={})
    assert "--verify-cmd" in err.value.message and err.value.exit_code == 2


def test_every_target_published_is_no_error():
    assert report.run_error([_report("a"), _report("b")]) is None


def test_one_failed_target_among_several_is_exit_1_naming_it_and_the_published_ones():
    failed = _report("b", ok=False, outcome=report.OUTCOME_FAILED, error="build failed for linux/arm64")
    err = report.run_error([_report("a"), failed, _report("c")])
    assert isinstance(err, BuildError) and err.exit_code == 1
    assert "1 of 3 target(s) failed" in err.message and 'target "b": build failed for linux/arm64' in err.message
    assert "published: a, c" in err.hint


def test_a_single_target_keeps_its_own_error_and_exit_code():
    own = RegistryError("registry down")
    failed = _report("a", ok=False, outcome=report.OUTCOME_FAILED, error=own.message)
    failed.exc = own
    assert report.run_error([failed]) is own


def test_atomic_with_a_failure_holds_every_other_target_and_publishes_nothing():
    calls = []
    reports = {"a": _report("a", outcome=report.OUTCOME_PENDING), "b": _report("b", outcome=report.OUTCOME_PENDING)}
    built = [(_target("a"), publish.Built(("r/a@sha256:1",), {})), (_target("b"), publish.Built(("r/b@sha256:2",), {}))]
    publish.publish_all(
        built, reports, held=True, docker_config=None, builder="f", echo=lambda _: None, publish=calls.append
    )
    assert calls == [] and {r.outcome for r in reports.values()} == {report.OUTCOME_HELD}
    reports["c"] = _report("c", ok=False, outcome=report.OUTCOME_FAILED, error="boom")
    err = report.run_error(list(reports.values()), atomic=True)
    assert err is not None and "no tag of any target moved" in err.hint


def test_atomic_publishes_all_when_every_target_succeeded():
    moved = []
    reports = {n: _report(n, outcome=report.OUTCOME_PENDING) for n in "abc"}
    built = [(_target(n), publish.Built((f"r/{n}@sha256:1",), {})) for n in "abc"]
    publish.publish_all(
        built,
        reports,
        held=False,
        docker_config=None,
        builder="f",
        echo=lambda _: None,
        publish=lambda target, *a, **k: moved.append(target.name),
    )
    assert sorted(moved) == ["a", "b", "c"]
    assert all(r.outcome == report.OUTCOME_PUBLISHED and r.ok for r in reports.values())


def test_ctrl_c_while_the_creates_are_submitted_stops_the_rest_and_says_so(monkeypatch):
    """Ctrl-C coming while the run hands out the creates (a loaded machine, seen in CI): the
    ones handed out finish, no other starts, and the reports and the log say so."""
    reports = {n: _report(n, outcome=report.OUTCOME_PENDING) for n in "abc"}
    built = [(_target(n), publish.Built((f"r/{n}@sha256:1",), {})) for n in "abc"]
    moved, said = [], []

    class Pool(publish.ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            if args[0].name == "b":
                raise KeyboardInterrupt  # where a real SIGINT lands when the main thread is here
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(publish, "ThreadPoolExecutor", Pool)
    with pytest.raises(KeyboardInterrupt):
        publish.publish_all(
            built,
            reports,
            held=False,
            docker_config=None,
            builder="f",
            echo=said.append,
            publish=lambda target, *a, **k: moved.append(target.name),
        )
    assert moved == ["a"]
    assert [reports[n].outcome for n in "abc"] == [report.OUTCOME_PUBLISHED] + [report.OUTCOME_INTERRUPTED] * 2
    assert any("interrupted" in line for line in said)


def test_ctrl_c_between_two_creates_stops_the_rest_and_the_report_says_which_tags_moved():
    """A real SIGINT while b's list is being created (one worker, so in order): b, in flight,
    finishes; c never starts; the reports say exactly which tags moved."""
    reports = {n: _report(n, outcome=report.OUTCOME_PENDING) for n in "abc"}
    built = [(_target(n), publish.Built((f"r/{n}@sha256:1",), {})) for n in "abc"]
    moved = []

    noticed = threading.Event()

    def echo(line: str) -> None:
        if "interrupted" in line:
            noticed.set()

    main = threading.main_thread().ident
    assert main is not None

    def create(target, *args, **kwargs):
        if target.name == "b":
            # Ctrl-C, sent to the main thread: a process-wide kill may land on this worker
            # thread, and then the main thread sleeps on in its wait until b is done.
            signal.pthread_kill(main, signal.SIGINT)
            assert noticed.wait(60)  # b is in flight when the run notices (slow on a loaded machine)
        moved.append(target.name)

    original = publish.ThreadPoolExecutor
    publish.ThreadPoolExecutor = lambda max_workers: original(max_workers=1)  # type: ignore[misc,assignment]
    try:
        with pytest.raises(KeyboardInterrupt):
            publish.publish_all(built, reports, held=False, docker_config=None, builder="f", echo=echo, publish=create)
    finally:
        publish.ThreadPoolExecutor = original  # type: ignore[misc]
    assert moved == ["a", "b"]
    assert [reports[n].outcome for n in "abc"] == ["published", "published", "interrupted"]
    assert not reports["c"].ok and "interrupted" in reports["c"].error
    err = report.run_error(list(reports.values()), atomic=True)
    assert err is not None and "tags moved only for a, b" in err.hint and "rerun" in err.hint


def test_summary_table_and_markdown_list_every_target_and_platform(tmp_path):
    reports = [_report("a"), _report("b", ok=False, outcome=report.OUTCOME_FAILED, error="it broke\nmore")]
    table = report.summary_table(reports)
    assert table.splitlines()[0].split() == ["TARGET", "PLATFORM", "NODE", "DIGEST", "VERIFIED", "OUTCOME"]
    assert len(table.splitlines()) == 5 and "failed" in table
    summary = tmp_path / "summary.md"
    summary.write_text("before\n")
    report.append_step_summary(reports, {"GITHUB_STEP_SUMMARY": str(summary)})
    text = summary.read_text()
    assert text.startswith("before\n### farm build: 1 of 2 target(s) published")
    assert "| a | linux/arm64 | node2 | `sha256:" + "b" * 64 + "` | - | published |" in text
    assert "**b**: it broke" in text and "more" not in text
    report.append_step_summary(reports, {})  # not in CI: nothing to write, no error


def test_report_json_has_the_outcome_and_no_exception_object():
    r = _report("a", ok=False, outcome=report.OUTCOME_FAILED, error="x")
    r.exc = BuildError("x")
    data = r.to_dict()
    assert data["outcome"] == "failed" and "exc" not in data


def test_report_path_is_checked_before_anything_runs(tmp_path):
    report.check_report_path(None)
    report.check_report_path(tmp_path / "r.json")
    for bad in (tmp_path, tmp_path / "missing" / "r.json"):
        with pytest.raises(UsageError) as err:
            report.check_report_path(bad)
        assert err.value.exit_code == 2 and "--report" in err.value.message


def test_a_run_that_fails_before_building_still_writes_its_report(tmp_path):
    path = tmp_path / "r.json"
    report.finish([], UsageError('unknown target "x"'), report_path=path, env={})
    data = json.loads(path.read_text())
    assert data == {"ok": False, "error": 'unknown target "x"', "targets": []}
