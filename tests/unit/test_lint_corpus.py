"""`farm lint` on the corpus (tests/lint_corpus/): Dockerfiles in real projects' shapes, each with
its hand label (`# ready:`) and its exact expected findings (`# expect:`)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from buildkit_farm.lint.files import Subject, subjects_for_paths
from buildkit_farm.lint.findings import RULES
from buildkit_farm.lint.rules import lint_subjects, lint_text

CORPUS = Path(__file__).resolve().parents[1] / "lint_corpus"
FILES = sorted(CORPUS.glob("*.Dockerfile"))
_META = re.compile(r"^#\s*(expect|as|platforms|ready):\s*(.*?)\s*$")


def _meta(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = _META.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _lint(path: Path):
    meta = _meta(path)
    platforms = [p for p in meta.get("platforms", "").split(",") if p]
    return lint_text(path.read_text(), file=meta.get("as", "Dockerfile"), platforms=platforms)


def _expected(meta: dict[str, str]) -> list[tuple[str, int]]:
    words = meta["expect"].split()
    return [] if words == ["none"] else sorted((w.split("@")[0], int(w.split("@")[1])) for w in words)


def test_the_corpus_is_big_and_labelled():
    assert len(FILES) >= 40
    labels = [_meta(p)["ready"].split()[0] for p in FILES]
    assert set(labels) == {"yes", "no"} and labels.count("yes") >= 12 and labels.count("no") >= 12


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_corpus_file(path: Path):
    meta = _meta(path)
    findings = _lint(path)
    assert sorted((f.rule, f.line) for f in findings) == _expected(meta), "\n".join(f.render() for f in findings)
    severities = {f.severity for f in findings}
    if meta["ready"].startswith("yes"):
        assert "error" not in severities and "warning" not in severities  # the bar: no noise on a ready file
    else:
        assert severities & {"error", "warning"}, "a file not ready must get an error or a warning"


def test_every_new_rule_is_exercised_by_the_corpus():
    covered = {rule for path in FILES for rule, _ in _expected(_meta(path))}
    assert {"wrong-arch-binary", "unsupported-platform", "pinned-stage", "arch-specific-from"} <= covered
    assert covered <= set(RULES)


def test_the_whole_corpus_lints_in_one_process_under_half_a_second():
    subjects = [Subject(p, platforms=tuple(p for p in _meta(p).get("platforms", "").split(",") if p)) for p in FILES]
    lint_subjects(subjects[:1], display=str)  # warm the regex caches, as a real run has them compiled at import
    start = time.perf_counter()
    report = lint_subjects(subjects, display=str)
    elapsed = time.perf_counter() - start
    assert report.findings and elapsed < 0.5, f"{elapsed:.3f} s"


def test_a_folder_lint_finds_every_corpus_file():
    assert len(subjects_for_paths([str(CORPUS)])) == len(FILES)
