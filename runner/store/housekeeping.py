"""What follows a run's collection, wherever it was collected: move `latest`, then apply retention.

The local supervisor (runner.backends.local.attempts) and the in-container agent (cluster and nightly runs,
where no runner is attached) both call after_collect, so a job's store is kept the same way whichever
ran it. It never raises: a run's result stands whatever happens here, and callers append the
problems to the run's message (local) or print them (agent).

The order matters: `latest` moves first, so retention, which never deletes the run `latest` names,
sees the run just collected as the newest.

In a file:// store the job's stale temporary files (left by writers killed mid-write, older than
STALE_TEMP_SECONDS) are removed too, with or without a retention policy: no listing shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.errors import reason_of
from runner.store.base import Store
from runner.store.file import STALE_TEMP_SECONDS, FileStore
from runner.store.latest import job_prefix, update_latest
from runner.store.retention import RetentionPolicy, apply_retention


@dataclass(frozen=True)
class Housekeeping:
    """What after_collect did."""

    latest_moved: bool = False
    deleted: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    temp_removed: tuple[str, ...] = ()  # stale temporary files deleted (file:// stores)

    def describe(self) -> str:
        """One line for a person: the pointer, the runs deleted, what went wrong; empty when nothing."""
        parts = []
        if self.deleted:
            plural = "s" if len(self.deleted) > 1 else ""
            parts.append(f"retention deleted {len(self.deleted)} old run{plural}: {', '.join(self.deleted)}")
        parts.extend(self.problems)
        return "; ".join(parts)


def after_collect(
    store: Store,
    *,
    job: str,
    run_id: str,
    succeeded: bool,
    finished: float,
    policy: RetentionPolicy | None,
    now: float,
) -> Housekeeping:
    """Once run_id is completely collected (MANIFEST.json written): latest if it succeeded, then retention."""
    moved = False
    problems: list[str] = []
    if succeeded:
        try:
            moved = update_latest(store, job, run_id, finished)
        except Exception as error:  # the run's result stands: say what went wrong
            problems.append(f"cannot update {job}/latest: {reason_of(error)}")
    deleted: list[str] = []
    if policy is not None:
        try:
            pruned = apply_retention(store, job, policy, now)
        except Exception as error:
            problems.append(f"retention failed: {reason_of(error)}")
        else:
            deleted, problems = pruned.deleted, [*problems, *pruned.problems]
    removed: list[str] = []
    if isinstance(store, FileStore):
        try:
            removed = store.remove_stale_temp_files(job_prefix(job), now - STALE_TEMP_SECONDS)
        except Exception as error:
            problems.append(f"cannot remove stale temporary files: {reason_of(error)}")
    return Housekeeping(
        latest_moved=moved, deleted=tuple(deleted), problems=tuple(problems), temp_removed=tuple(removed)
    )
