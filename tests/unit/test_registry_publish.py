"""Making a list again after a push that failed for a passing reason (`registry.publish._create`)."""

from __future__ import annotations

import pytest

from buildkit_farm.docker import DockerFailed
from buildkit_farm.errors import RegistryError
from buildkit_farm.registry import publish

CUT = (
    'ERROR: failed commit on ref "manifest-sha256:27": unexpected status from PUT request to '
    "https://r:5443/v2/x/manifests/sha256:27: 400 Bad Request\nerrors:\n"
    "unknown: provided digest did not match uploaded content\nunknown: blob unknown to registry\n"
)
REFUSED = "ERROR: failed to push r:5443/x:1: unexpected status: 401 Unauthorized\n"


class Where:
    """Answers each `create` with the next of `answers` (an stderr fails it, None succeeds)."""

    def __init__(self, *answers: str | None) -> None:
        self.answers, self.calls = list(answers), []

    def create(self, sources, tags):
        self.calls.append((list(sources), list(tags)))
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise DockerFailed(["docker", "buildx", "imagetools", "create"], 1, "", answer)


@pytest.fixture(autouse=True)
def no_wait(monkeypatch):
    monkeypatch.setattr(publish, "CREATE_SETTLE", 0)


def test_a_cut_push_makes_every_pass_again_once_and_says_so():
    where, said = Where(None, CUT), []
    publish._create(where, ["r:5443/x:1"], ["a", "b"], [("r:5443/x:1", ["c"])], said.append)
    assert where.calls == [(["a", "b"], ["r:5443/x:1"]), (["r:5443/x:1", "c"], ["r:5443/x:1"])] * 2
    assert len(said) == 1 and "r:5443/x:1" in said[0] and "again once" in said[0]
    assert "digest did not match" in said[0] and "------" not in said[0]


def test_a_second_cut_push_is_the_error():
    where, said = Where(CUT, CUT, None), []
    with pytest.raises(RegistryError, match="usually passes"):
        publish._create(where, ["r:5443/x:1"], ["a"], [], said.append)
    assert len(where.calls) == 2 and len(said) == 1


def test_a_refusal_is_never_tried_again():
    where, said = Where(REFUSED), []
    with pytest.raises(RegistryError, match="docker login|refused"):
        publish._create(where, ["r:5443/x:1"], ["a"], [], said.append)
    assert len(where.calls) == 1 and said == []
