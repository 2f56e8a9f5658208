"""Retention: which of a job's runs the store keeps, and deleting the others safely.

A job's manifest may say `spec.retention: {keepLast: N, keepDays: D}` (the agent gets it as
RUNNER_RETENTION=keepLast=N,keepDays=D). After each run is collected, a complete run of the job is
deleted only when no given rule keeps it: it is not among the newest keepLast complete runs, and it
finished more than keepDays ago (exactly keepDays ago still keeps it). Runs are ordered by run.json's
finished time (run ids are random, not time-ordered), or by when MANIFEST.json was written where
run.json does not say.

Never deleted, whatever the rules say:
- a run without MANIFEST.json. It is still being written (collection writes MANIFEST.json last), or
  its collector crashed part way; either way its files may be all that is left of it, and a run still
  being written must not lose files under its writer. Such runs take no keepLast place either.
- the run `<job>/latest` points at (see latest.py), so "the latest model" always resolves.
- anything under <job>/ that is not named like a run of the job (<job>-<suffix>).

A run is deleted MANIFEST.json first, in a call of its own, then the rest: a run half deleted (the
deleter died, or the store failed part way) reads as incomplete, never as complete with files missing.
Such a run is then never deleted by retention; remove it by hand.

select_expired is the decision, pure; scan_runs and delete_run are the I/O around it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from runner.errors import RunnerError, UserError
from runner.store import runjson
from runner.store.base import Store
from runner.store.collect import MANIFEST_FILE, RUN_FILE, run_prefix
from runner.store.latest import is_run_of, job_prefix, read_latest_pointer

DAY = 24 * 60 * 60.0
RULES = {"keepLast": "keep_last", "keepDays": "keep_days"}
FORMAT_HINT = "use keepLast=N and/or keepDays=D with whole numbers from 1, e.g. keepLast=5,keepDays=30"


@dataclass(frozen=True)
class RetentionPolicy:
    """The rules of spec.retention; None means the rule is not given."""

    keep_last: int | None = None
    keep_days: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("keepLast", self.keep_last), ("keepDays", self.keep_days)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UserError(f"retention {name}={value!r} is not a whole number from 1", hint=FORMAT_HINT)
        if self.keep_last is None and self.keep_days is None:
            raise UserError("retention needs keepLast, keepDays or both", hint=FORMAT_HINT)

    def to_env(self) -> str:
        """RUNNER_RETENTION's form, as runner.spec's Retention.to_env writes it."""
        parts = (("keepLast", self.keep_last), ("keepDays", self.keep_days))
        return ",".join(f"{name}={value}" for name, value in parts if value is not None)


def parse_retention(text: str) -> RetentionPolicy | None:
    """RUNNER_RETENTION ("keepLast=5,keepDays=30", either part alone) as a policy; None when empty.

    Anything else is a UserError that quotes the value and says the form.
    """
    if not text.strip():
        return None
    rules: dict[str, int] = {}
    for part in text.split(","):
        name, equals, value = (piece.strip() for piece in part.partition("="))
        if name not in RULES:
            known = {rule.lower(): rule for rule in RULES}
            guess = known.get(name.lower())
            mean = f"; did you mean {guess!r}?" if guess else ""
            raise UserError(f"retention {text!r}: unknown rule {name!r}{mean}", hint=FORMAT_HINT)
        if name in rules:
            raise UserError(f"retention {text!r}: {name} is given twice", hint=FORMAT_HINT)
        if not equals or not value.isascii() or not value.isdigit() or int(value) < 1:
            raise UserError(
                f"retention {text!r}: {name} needs a whole number from 1, got {value!r}", hint=FORMAT_HINT
            )
        rules[name] = int(value)
    return retention_from_mapping(rules)


def retention_from_mapping(data: Mapping[str, object]) -> RetentionPolicy:
    """A policy from spec.retention's fields as the resolved manifest holds them ({"keepLast": 5})."""
    unknown = sorted(set(data) - set(RULES))
    if unknown:
        raise UserError(f"retention: unknown rule {unknown[0]!r}", hint=FORMAT_HINT)
    values = {RULES[name]: value for name, value in data.items() if value is not None}
    return RetentionPolicy(**values)  # type: ignore[arg-type]  # checked in __post_init__


@dataclass(frozen=True)
class StoredRun:
    """A run directory of a job, as retention sees it."""

    run_id: str
    complete: bool  # MANIFEST.json is there
    finished: float | None = None  # seconds since the epoch; None when nothing says


def select_expired(
    runs: Iterable[StoredRun], policy: RetentionPolicy, now: float, latest: str | None
) -> list[str]:
    """The run ids to delete under policy at time now, oldest first.

    Only complete runs with a known finished time can expire; the newest keep_last of those are kept,
    and so is every one that finished at most keep_days before now, and the run latest names.
    """
    dated = [run for run in runs if run.complete and run.finished is not None]
    newest_first = sorted(dated, key=lambda run: (run.finished, run.run_id), reverse=True)
    expired = []
    for rank, run in enumerate(newest_first):
        assert run.finished is not None
        kept_by_count = policy.keep_last is not None and rank < policy.keep_last
        kept_by_age = policy.keep_days is not None and now - run.finished <= policy.keep_days * DAY
        if not (kept_by_count or kept_by_age or run.run_id == latest):
            expired.append(run.run_id)
    return expired[::-1]


def scan_runs(store: Store, job: str) -> list[StoredRun]:
    """Every run directory of job in the store, with whether it is complete and when it finished."""
    objects = store.list(job_prefix(job))
    manifests: dict[str, float | None] = {}
    seen: set[str] = set()
    for item in objects:
        parts = item.key.split("/")
        if len(parts) < 3 or not is_run_of(job, parts[1]):
            continue  # <job>/latest, or something that is not one of our runs: never touched
        seen.add(parts[1])
        if len(parts) == 3 and parts[2] == MANIFEST_FILE:
            manifests[parts[1]] = item.modified
    runs = []
    for run_id in sorted(seen):
        complete = run_id in manifests
        finished = _finished(store, job, run_id) if complete else None
        runs.append(StoredRun(run_id, complete, finished if finished is not None else manifests.get(run_id)))
    return runs


def _finished(store: Store, job: str, run_id: str) -> float | None:
    """run.json's finished time (RFC 3339, or version 1's epoch seconds), or None when it is missing,
    unreadable or not a time."""
    try:
        document = json.loads(store.get_bytes(f"{run_prefix(job, run_id)}/{RUN_FILE}"))
    except (RunnerError, ValueError):
        return None
    return runjson.finished_of(document) if isinstance(document, dict) else None


def delete_run(store: Store, job: str, run_id: str) -> int:
    """Delete one run: MANIFEST.json first (it then reads as incomplete), then the rest; how many objects."""
    prefix = run_prefix(job, run_id)
    manifest = f"{prefix}/{MANIFEST_FILE}"
    rest = [item.key for item in store.list(prefix) if item.key != manifest]
    store.delete([manifest])
    store.delete(rest)
    return len(rest) + 1


@dataclass
class Pruned:
    """What apply_retention did: the runs it deleted and what went wrong (nothing raises)."""

    deleted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def apply_retention(store: Store, job: str, policy: RetentionPolicy, now: float) -> Pruned:
    """Delete the runs of job that policy no longer keeps; problems are reported, never raised.

    Without a readable `latest` pointer nothing is deleted: the run it names cannot be protected.
    """
    pruned = Pruned()
    try:
        pointer = read_latest_pointer(store, job)
        runs = scan_runs(store, job)
    except RunnerError as error:
        pruned.problems.append(f"retention skipped: {error.message}")
        return pruned
    latest = pointer.run_id if pointer is not None else None
    for run_id in select_expired(runs, policy, now, latest):
        try:
            delete_run(store, job, run_id)
        except (RunnerError, OSError) as error:
            reason = error.message if isinstance(error, RunnerError) else str(error)
            pruned.problems.append(f"cannot delete run {run_id}: {reason}")
            continue
        pruned.deleted.append(run_id)
    return pruned
