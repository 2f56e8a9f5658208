"""`<job>/latest`: which of a job's runs is its newest succeeded, completely collected run.

A small JSON object beside the job's runs ({"job", "run", "finished", "state"}). Its name cannot clash
with a run: run ids always hold the job name and a dash. It moves only forward:

- it is written only after the run's MANIFEST.json, so it never names a run still being written;
- a run that finished earlier than the one it names never moves it back, whatever order runs are
  collected in (runs finish out of order: retries, slow uploads, parallel nightly runs). Finished times
  are compared, ties broken by run id so every writer agrees.

The store has no compare-and-swap, so two runs collected at the same moment can race between reading
and writing the pointer; the loser's pointer is corrected by the next succeeded run. Retention never
deletes the run the pointer names (see retention.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from runner.errors import NotFoundError, StoreError, UnsafePathError
from runner.store.base import Store, check_key
from runner.store.collect import MANIFEST_FILE, json_bytes, run_prefix

LATEST = "latest"
SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class Latest:
    """What the pointer says: a run and when it finished (seconds since the epoch)."""

    run_id: str
    finished: float


def job_prefix(job: str) -> str:
    """The key prefix of all of a job's runs: its name, a single path part."""
    if "/" in job:
        raise UnsafePathError(f"refusing job name {job!r}: it must not contain '/'")
    return check_key(job)


def latest_key(job: str) -> str:
    """The pointer's key: <job>/latest."""
    return f"{job_prefix(job)}/{LATEST}"


def moves_to(current: Latest | None, candidate: Latest) -> bool:
    """Whether the pointer should name candidate instead of current: only when candidate is newer."""
    if current is None:
        return True
    return (candidate.finished, candidate.run_id) >= (current.finished, current.run_id)


def read_latest_pointer(store: Store, job: str) -> Latest | None:
    """The pointer of job, or None when it has none yet; StoreError when it is damaged."""
    key = latest_key(job)
    try:
        data = store.get_bytes(key)
    except NotFoundError:
        return None
    try:
        return _parse(json.loads(data), job)
    except (ValueError, KeyError, TypeError, UnsafePathError) as error:
        raise StoreError(f"{store.location(key)} is damaged: {error}") from None


def read_latest(store: Store, job: str) -> str | None:
    """The run id of job's newest succeeded complete run, or None when it has none."""
    pointer = read_latest_pointer(store, job)
    return pointer.run_id if pointer is not None else None


def update_latest(store: Store, job: str, run_id: str, finished: float) -> bool:
    """Point job's latest at run_id, a succeeded run, unless it names a newer one; whether it moved.

    The run must be completely collected (its MANIFEST.json written): the pointer never names a run
    that is still being written. A damaged pointer is replaced.
    """
    if not is_run_of(job, run_id):
        raise UnsafePathError(f"refusing run id {run_id!r}: runs of job {job!r} are named {job}-<suffix>")
    manifest = f"{run_prefix(job, run_id)}/{MANIFEST_FILE}"
    if not store.exists(manifest):
        raise StoreError(f"not pointing {latest_key(job)} at {run_id}: {store.location(manifest)} is missing")
    candidate = Latest(run_id=run_id, finished=finished)
    try:
        current = read_latest_pointer(store, job)
    except StoreError:
        current = None
    if not moves_to(current, candidate):
        return False
    document = {"job": job, "run": run_id, "finished": finished, "state": SUCCEEDED}
    store.put_bytes(latest_key(job), json_bytes(document))
    return True


def is_run_of(job: str, name: str) -> bool:
    """Whether name, a path part under <job>/, is a run id of job: <job>-<suffix>, never `latest`."""
    return name.startswith(f"{job}-") and len(name) > len(job) + 1 and "/" not in name


def _parse(data: Any, job: str) -> Latest:
    run_id, finished = data["run"], data["finished"]
    if not isinstance(run_id, str) or not is_run_of(job, run_id):
        raise ValueError(f"run {run_id!r} is not a run of job {job!r}")
    run_prefix(job, run_id)  # a key like any other: no '..', no empty parts
    if isinstance(finished, bool) or not isinstance(finished, int | float) or not math.isfinite(finished):
        raise ValueError(f"finished {finished!r} is not a time")
    return Latest(run_id=run_id, finished=float(finished))
