"""`runner delete` and `runner prune`: what to remove, decided apart from removing it.

A run is deleted as a whole: whatever its backend still holds of it (a cluster's Job, asked through the
Backend protocol's cancel, which removes it and its ConfigMap), its work directory on this machine, its
record, and with artifacts=True its files in the store (MANIFEST.json first, as retention does; the job's
`latest` pointer too when it names the run). A run that is still going is refused: cancel it first.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runner.backends import Backend
from runner.config import Settings
from runner.errors import UserError
from runner.records import RunRecord, RunRecords, RunState

# A pending cluster run whose submit failed before its Job existed is stale after this long.
STALE_SUBMIT_SECONDS = 3600.0


@dataclass
class Removal:
    """What deleting one run does (or did): each part said, for the dry run and the report."""

    run: RunRecord
    parts: list[str] = field(default_factory=list)


def deletable(record: RunRecord) -> None:
    """UserError (exit 2) for a run that is still going."""
    if not record.state.final and not _stale_submit(record, None):
        raise UserError(
            f"run {record.id} is {record.state.value}: it cannot be deleted while it goes on",
            hint=f"runner cancel {record.id} stops it first",
        )


def _stale_submit(record: RunRecord, now: float | None) -> bool:
    """A record left by a submit that created nothing (the cluster refused it part way)."""
    if record.state is not RunState.PENDING or record.launch.get("created") is not False:
        return False
    return now is None or now - record.created >= STALE_SUBMIT_SECONDS


def plan_removal(record: RunRecord, *, artifacts: bool) -> Removal:
    removal = Removal(record)
    if record.launch.get("namespace") and record.launch.get("created") is not False:
        removal.parts.append(f"its Job and ConfigMap in namespace {record.launch.get('namespace')}")
    if record.workdir:
        removal.parts.append(f"its work directory {record.workdir}")
    removal.parts.append("its record")
    if artifacts:
        removal.parts.append(f"its artifacts in {record.store_url.rstrip('/')}/{record.job}/{record.id}/")
    return removal


def remove(
    removal: Removal, records: RunRecords, settings: Settings, backend: Backend, *, artifacts: bool
) -> list[str]:
    """Do what plan_removal said, backend being the run's; notes on what there was not to remove."""
    record, notes = removal.run, []
    if record.launch.get("namespace") and record.launch.get("created") is not False:
        backend.cancel(record, records, settings)  # a cluster's: deletes the Job (gone already is fine)
    if record.workdir:
        shutil.rmtree(Path(record.workdir), ignore_errors=True)
    if artifacts:
        notes += _remove_artifacts(record)
    records.delete(record.id)
    return notes


def _remove_artifacts(record: RunRecord) -> list[str]:
    from runner.store import open_store
    from runner.store.latest import latest_key, read_latest
    from runner.store.retention import delete_run

    store = open_store(record.store_url)
    count = delete_run(store, record.job, record.id)
    notes = [] if count > 1 else ["it had no artifacts in the store"]
    if read_latest(store, record.job) == record.id:
        store.delete([latest_key(record.job)])
        notes.append(f"job {record.job} has no `latest` run until its next success")
    return notes


def prunable(records: Iterable[RunRecord], *, now: float, older_than: float) -> list[RunRecord]:
    """Final runs that finished (or, never started, were created) more than older_than ago, and stale
    submit records. Pure."""
    cutoff = now - older_than
    chosen = []
    for record in records:
        ended = record.finished if record.finished is not None else record.created
        if (record.state.final and ended < cutoff) or _stale_submit(record, now):
            chosen.append(record)
    return chosen


@dataclass(frozen=True)
class JobImage:
    reference: str  # repository:tag, or the image id when it has no tag
    image_id: str
    job: str
    created: str  # RFC 3339, as the engine says


def unused_images(images: Sequence[JobImage], used: set[str]) -> list[JobImage]:
    """Job images no run record names (by reference or id), keeping each job's newest: the next submit
    and a schedule's next run use it. Pure."""
    newest: dict[str, JobImage] = {}
    for image in images:
        if image.job not in newest or image.created > newest[image.job].created:
            newest[image.job] = image
    kept_ids = {image.image_id for image in newest.values()}
    return [
        image
        for image in images
        if image.image_id not in kept_ids and image.reference not in used and image.image_id not in used
    ]


def used_images(records: Iterable[RunRecord]) -> set[str]:
    used: set[str] = set()
    for record in records:
        for key in ("image", "image_digest", "imageDigest"):
            value = record.launch.get(key)
            if isinstance(value, str) and value:
                used.add(value)
    return used


def say(removal: Removal) -> str:
    return f"run {removal.run.id}: " + ", ".join(removal.parts)
