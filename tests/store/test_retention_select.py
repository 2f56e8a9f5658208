"""The retention decision, pure: select_expired, and reading policies from RUNNER_RETENTION and manifests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.errors import UserError
from runner.store.retention import (
    DAY,
    RetentionPolicy,
    StoredRun,
    parse_retention,
    retention_from_mapping,
    select_expired,
)

NOW = 1_750_000_000.0


def run(name: str, days_ago: float | None, *, complete: bool = True) -> StoredRun:
    return StoredRun(f"job-{name}", complete, None if days_ago is None else NOW - days_ago * DAY)


def expired(runs: list[StoredRun], latest: str | None = None, **rules: int) -> list[str]:
    return select_expired(runs, RetentionPolicy(**rules), NOW, latest)


RUNS = [run("a", 5), run("b", 4), run("c", 3), run("d", 2), run("e", 1)]


def test_keep_last_keeps_the_newest_and_returns_the_rest_oldest_first() -> None:
    assert expired(RUNS, keep_last=2) == ["job-a", "job-b", "job-c"]
    assert expired(RUNS, keep_last=5) == []
    assert expired(RUNS, keep_last=1) == ["job-a", "job-b", "job-c", "job-d"]


def test_keep_days_keeps_what_finished_within_the_days_and_exactly_at_the_boundary() -> None:
    assert expired(RUNS, keep_days=3) == ["job-a", "job-b"]  # c finished exactly 3 days ago: kept
    just_over = [StoredRun("job-x", True, NOW - 3 * DAY - 0.001), StoredRun("job-y", True, NOW - 3 * DAY)]
    assert expired(just_over, keep_days=3) == ["job-x"]


def test_with_both_rules_a_run_goes_only_when_neither_keeps_it() -> None:
    # keepLast keeps e and d; keepDays=4 keeps b, c, d, e: only a is kept by neither
    assert expired(RUNS, keep_last=2, keep_days=4) == ["job-a"]
    # many recent runs: keepDays keeps all of them though keepLast alone would not
    assert expired(RUNS, keep_last=1, keep_days=10) == []
    # old runs: keepLast keeps two though keepDays alone would keep none
    assert expired(RUNS, keep_last=2, keep_days=1) == ["job-a", "job-b", "job-c"]


def test_the_run_latest_points_at_is_never_deleted() -> None:
    assert expired(RUNS, latest="job-a", keep_last=1) == ["job-b", "job-c", "job-d"]
    assert expired(RUNS, latest="job-b", keep_days=1) == ["job-a", "job-c", "job-d"]


def test_a_run_without_manifest_is_never_deleted_and_takes_no_keep_last_place() -> None:
    in_progress = run("old", 100, complete=False)  # the oldest of all, still being written (or crashed)
    runs = [in_progress, *RUNS]
    assert "job-old" not in expired(runs, keep_last=1)
    assert "job-old" not in expired(runs, keep_days=1)
    # a newer incomplete run does not push complete ones out of the newest keepLast
    assert expired([*RUNS, run("new", 0, complete=False)], keep_last=2) == ["job-a", "job-b", "job-c"]


def test_a_complete_run_with_no_known_finished_time_is_kept() -> None:
    assert expired([run("unknown", None), *RUNS], keep_last=1) == ["job-a", "job-b", "job-c", "job-d"]


def test_order_is_by_finished_time_not_by_run_id_or_input_order() -> None:
    # run ids are random: "zzz" finished first, "aaa" last
    runs = [
        StoredRun("job-aaa", True, NOW - 10),
        StoredRun("job-zzz", True, NOW - 30),
        StoredRun("job-mmm", True, NOW - 20),
    ]
    assert expired(runs, keep_last=1) == ["job-zzz", "job-mmm"]
    assert expired(list(reversed(runs)), keep_last=1) == ["job-zzz", "job-mmm"]


def test_equal_finished_times_are_ranked_by_run_id_so_every_caller_agrees() -> None:
    runs = [StoredRun("job-b", True, NOW), StoredRun("job-a", True, NOW)]
    assert expired(runs, keep_last=1) == ["job-a"]
    assert expired(list(reversed(runs)), keep_last=1) == ["job-a"]


runs_strategy = st.lists(
    st.builds(
        StoredRun,
        run_id=st.text("abcdef0123", min_size=1, max_size=4).map(lambda suffix: f"job-{suffix}"),
        complete=st.booleans(),
        finished=st.one_of(st.none(), st.floats(min_value=NOW - 60 * DAY, max_value=NOW + DAY)),
    ),
    max_size=20,
    unique_by=lambda item: item.run_id,
)


def _policy(keep_last: int | None, keep_days: int | None) -> RetentionPolicy | None:
    if keep_last is None and keep_days is None:
        return None
    return RetentionPolicy(keep_last=keep_last, keep_days=keep_days)


policy_strategy = st.builds(
    _policy, st.one_of(st.none(), st.integers(1, 8)), st.one_of(st.none(), st.integers(1, 40))
).filter(lambda policy: policy is not None)


@given(runs_strategy, policy_strategy, st.one_of(st.none(), st.text("abcdef0123", min_size=1, max_size=4)))
def test_properties_of_any_selection(
    runs: list[StoredRun], policy: RetentionPolicy | None, latest: str | None
) -> None:
    assert policy is not None
    latest_id = None if latest is None else f"job-{latest}"
    chosen = select_expired(runs, policy, NOW, latest_id)
    by_id = {item.run_id: item for item in runs}
    assert len(chosen) == len(set(chosen))
    assert latest_id not in chosen
    for run_id in chosen:
        item = by_id[run_id]
        assert item.complete and item.finished is not None
        if policy.keep_days is not None:
            assert NOW - item.finished > policy.keep_days * DAY
    dated = sorted(
        (item for item in runs if item.complete and item.finished is not None),
        key=lambda item: (item.finished, item.run_id),
        reverse=True,
    )
    if policy.keep_last is not None:
        assert not set(chosen) & {item.run_id for item in dated[: policy.keep_last]}
    # oldest first
    finished = [by_id[run_id].finished for run_id in chosen]
    assert finished == sorted(finished)  # type: ignore[type-var]
    # exactly the complete, dated runs that no rule keeps
    kept = {item.run_id for item in dated[: policy.keep_last or 0]}
    if policy.keep_days is not None:
        kept |= {item.run_id for item in dated if NOW - (item.finished or 0) <= policy.keep_days * DAY}
    assert set(chosen) == {item.run_id for item in dated} - kept - {latest_id}


@given(runs_strategy, st.integers(1, 8))
def test_keeping_more_never_deletes_more(runs: list[StoredRun], keep: int) -> None:
    fewer = set(select_expired(runs, RetentionPolicy(keep_last=keep + 1), NOW, None))
    assert fewer <= set(select_expired(runs, RetentionPolicy(keep_last=keep), NOW, None))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("keepLast=5,keepDays=30", RetentionPolicy(keep_last=5, keep_days=30)),
        ("keepDays=30", RetentionPolicy(keep_days=30)),
        (" keepLast = 2 ", RetentionPolicy(keep_last=2)),
        ("", None),
        ("  ", None),
    ],
)
def test_parse_retention(text: str, expected: RetentionPolicy | None) -> None:
    assert parse_retention(text) == expected


def test_parse_retention_reads_what_to_env_writes() -> None:
    for policy in (RetentionPolicy(keep_last=3), RetentionPolicy(keep_days=7), RetentionPolicy(3, 7)):
        assert parse_retention(policy.to_env()) == policy
    assert RetentionPolicy(5, 30).to_env() == "keepLast=5,keepDays=30"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("keeplast=5", "unknown rule 'keeplast'; did you mean 'keepLast'?"),
        ("keepWeeks=2", "unknown rule 'keepWeeks'"),
        ("keepLast=five", "keepLast needs a whole number from 1, got 'five'"),
        ("keepLast=-1", "keepLast needs a whole number from 1, got '-1'"),
        ("keepLast", "keepLast needs a whole number from 1, got ''"),
        ("keepLast=0", "keepLast needs a whole number from 1, got '0'"),
        ("keepLast=1,keepLast=2", "keepLast is given twice"),
        ("keepLast=2,", "unknown rule ''"),
        ("keepDays=²", "keepDays needs a whole number"),
    ],
)
def test_bad_retention_values_say_what_is_wrong_and_the_form(text: str, says: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_retention(text)
    assert says in caught.value.message
    assert caught.value.hint is not None and "keepLast=N" in caught.value.hint


def test_a_policy_needs_a_rule() -> None:
    with pytest.raises(UserError, match="needs keepLast, keepDays or both"):
        RetentionPolicy()


def test_retention_from_the_resolved_manifest_fields() -> None:
    assert retention_from_mapping({"keepLast": 2}) == RetentionPolicy(keep_last=2)
    assert retention_from_mapping({"keepLast": None, "keepDays": 9}) == RetentionPolicy(keep_days=9)
    with pytest.raises(UserError, match="unknown rule 'keep'"):
        retention_from_mapping({"keep": 2})
    with pytest.raises(UserError, match="not a whole number"):
        retention_from_mapping({"keepLast": True})
