"""The command line's overrides of a target (`--set`, `--platform`, bare `--build-arg`):
strings in, frozen overrides or the exact input error out. Pure."""

from __future__ import annotations

import pytest

from buildkit_farm.builds.overrides import (
    SetOverride,
    TargetOverrides,
    build_args,
    overrides_for,
    parse_platforms,
    parse_sets,
    platform_subset,
    unmatched,
)
from buildkit_farm.errors import UsageError


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("*.platform=linux/arm64", SetOverride("*", "platform", None, "linux/arm64", False, "*.platform=linux/arm64")),
        ("app.tags=r/app:1", SetOverride("app", "tags", None, "r/app:1", False, "app.tags=r/app:1")),
        ("app.tags+=r/app:2", SetOverride("app", "tags", None, "r/app:2", True, "app.tags+=r/app:2")),
        ("app.args.VERSION=1.2=3", SetOverride("app", "args", "VERSION", "1.2=3", False, "app.args.VERSION=1.2=3")),
        ("app-*.labels.org.x=y", SetOverride("app-*", "labels", "org.x", "y", False, "app-*.labels.org.x=y")),
        ("app.no-cache", SetOverride("app", "no-cache", None, "true", False, "app.no-cache")),
        ("app.pull=false", SetOverride("app", "pull", None, "false", False, "app.pull=false")),
        ("app.target=runtime", SetOverride("app", "target", None, "runtime", False, "app.target=runtime")),
    ],
)
def test_a_set_flag_parses_as_bake_reads_it(flag, expected):
    assert parse_sets([flag]) == (expected,)


@pytest.mark.parametrize(
    ("flag", "words"),
    [
        ("platform=linux/amd64", "is not TARGET.KEY=VALUE"),
        (".tags=x", "is not TARGET.KEY=VALUE"),
        ("app.context=/elsewhere", 'farm does not override "context"'),
        ("app.output=type=local", 'farm does not override "output"'),
        ("app.args=X", "args needs a name"),
        ("app.tags", "has no value"),
        ("app.no-cache=maybe", "no-cache is true or false"),
        ("app.target+=x", "+= appends to a list"),
    ],
)
def test_a_bad_set_flag_is_an_input_error(flag, words):
    with pytest.raises(UsageError) as caught:
        parse_sets([flag])
    assert words in caught.value.message and f'"{flag}"' in caught.value.message
    assert caught.value.exit_code == 2


def test_overrides_follow_the_flags_in_order():
    sets = parse_sets(
        [
            "*.platform=aarch64,linux/amd64",
            "app.tags=r/app:1",
            "app.tags=r/app:2",
            "app.args.A=1",
            "*.args.A=2",
            "app.labels.team=x",
            "other.tags=r/other:1",
            "app.no-cache",
            "app.target=runtime",
            "app.cache-from=type=registry,ref=r/cache",
        ]
    )
    assert overrides_for("app", sets) == TargetOverrides(
        platforms=("linux/arm64", "linux/amd64"),
        tags=("r/app:1", "r/app:2"),
        cache_from=("type=registry,ref=r/cache",),
        args={"A": "2"},
        labels={"team": "x"},
        stage="runtime",
        no_cache=True,
    )
    assert overrides_for("other", sets).tags == ("r/other:1",)
    assert overrides_for("other", sets).args == {"A": "2"}
    assert overrides_for("third", parse_sets(["app.tags=x"])) == TargetOverrides()


def test_plus_equals_appends_to_the_files_list():
    sets = parse_sets(["app.tags+=r/app:extra", "app.tags+=r/app:more"])
    got = overrides_for("app", sets, file_values={"tags": ["r/app:1"]})
    assert got.tags == ("r/app:1", "r/app:extra", "r/app:more")


def test_a_set_naming_no_selected_target_is_an_input_error():
    sets = parse_sets(["ap.tags=x"])
    with pytest.raises(UsageError, match='no selected target matches "ap"'):
        unmatched(sets, ["app", "web"])
    unmatched(parse_sets(["a*.tags=x", "*.pull"]), ["app"])


def test_a_bad_platform_in_set_is_an_input_error():
    with pytest.raises(UsageError, match='--set "app.platform=linux/nope"'):
        overrides_for("app", parse_sets(["app.platform=linux/nope"]))


def test_platform_flag_takes_aliases_commas_and_repeats():
    assert parse_platforms(["linux/amd64,aarch64", "armhf", "linux/amd64", ""]) == (
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
    )
    with pytest.raises(UsageError, match='--platform "linux/nope"'):
        parse_platforms(["linux/nope"])


def test_platform_subset_keeps_the_targets_order():
    have = ("linux/amd64", "linux/arm64", "linux/arm/v7")
    assert platform_subset("app", have, ("linux/arm/v7", "linux/amd64")) == ("linux/amd64", "linux/arm/v7")
    assert platform_subset("app", have, ()) == have


def test_a_platform_the_target_lacks_is_named():
    with pytest.raises(UsageError) as caught:
        platform_subset("app", ("linux/amd64", "linux/arm64"), ("linux/arm64", "linux/s390x"))
    assert caught.value.message == (
        '--platform linux/s390x: target "app" does not build it (it builds linux/amd64, linux/arm64)'
    )
    assert caught.value.exit_code == 2


def test_a_bare_build_arg_takes_its_value_from_the_environment():
    env = {"VERSION": "1.2.3", "EMPTY": ""}
    assert build_args(["VERSION", "EMPTY", "UNSET", "GREETING=hi=there"], env) == {
        "VERSION": "1.2.3",
        "EMPTY": "",
        "GREETING": "hi=there",
    }
    for bad in ("=x", " KEY=x", "A B"):
        with pytest.raises(UsageError, match="is not KEY=VALUE or KEY"):
            build_args([bad], env)
