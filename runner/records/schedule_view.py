"""One schedule as `runner schedule list` shows it, wherever it lives: the one view of a schedule.

Both kinds of schedule produce it: this machine's (runner.service.schedules.local, from the schedule
records and the runs they started) and a cluster's (runner.backends.kubernetes.pure.cronjobs, from a
CronJob and its Jobs). It lives here, in runner.records, because that is the highest layer both
producers sit above (service > backends > records) and because it names a run's state (RunState, a
record type); runner.spec, lower still, cannot see run states. The module itself is pure: plain
data and its JSON/YAML document, no database and no I/O.

Fields that one kind of schedule has and the other has not are None there: a local schedule has no
namespace, image, CronJob status times or active list; a cluster's has no manifest path, no pause
separate from its suspend, and no slot history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runner.records import RunState


@dataclass(frozen=True, kw_only=True)
class ScheduleView:
    """A schedule: its timing, whether it runs, when it runs next, and its last run.

    suspended        spec.suspend: on this machine the manifest's spec.schedule.suspend; on a cluster
                     the CronJob's spec.suspend, which `runner schedule pause` also sets
    paused_by_hand   this machine only: paused by `runner schedule pause` (None on a cluster, where a
                     pause is the CronJob's suspend)
    next_run         aware, in the schedule's own zone; None while paused or suspended, or for a cron
                     that never fires again
    last_run         the run id of its newest run, by a slot or a trigger; last_result its state as it
                     stands now (None when the run is not known)
    """

    name: str
    backend: str  # process or docker on this machine; kubernetes on a cluster
    job: str  # the manifest's metadata.name
    cron: str
    time_zone: str
    concurrency: str  # Forbid, Replace or Allow
    suspended: bool
    next_run: datetime | None
    last_run: str | None = None
    last_result: RunState | None = None
    # this machine's schedules
    paused_by_hand: bool | None = None
    manifest: str | None = None  # the file applied, absolute
    last_run_created: datetime | None = None  # when the last run was created (the table shows its age)
    last_slot: datetime | None = None  # the latest slot handled, whatever became of it
    last_outcome: str | None = None  # what became of it: started, skipped, missed or failed
    # a cluster's schedules
    namespace: str | None = None
    image: str | None = None
    last_schedule: datetime | None = None  # the CronJob's status.lastScheduleTime
    last_successful: datetime | None = None  # the CronJob's status.lastSuccessfulTime
    active: tuple[str, ...] | None = None  # the run ids (Job names) of its unfinished runs

    @property
    def paused(self) -> bool:
        """Whether no slot runs now: paused by hand or suspended."""
        return self.suspended or bool(self.paused_by_hand)

    def to_dict(self) -> dict[str, Any]:
        """The schedule as data for `runner schedule list -o json|yaml`: the same keys for every schedule
        (null where a field does not apply), times in ISO 8601 UTC, states as their names."""
        return {
            "name": self.name,
            "backend": self.backend,
            "namespace": self.namespace,
            "job": self.job,
            "cron": self.cron,
            "timeZone": self.time_zone,
            "concurrency": self.concurrency,
            "paused": self.paused_by_hand,
            "suspended": self.suspended,
            "manifest": self.manifest,
            "image": self.image,
            "nextRun": utc_text(self.next_run),
            "lastRun": self.last_run,
            "lastResult": None if self.last_result is None else self.last_result.value,
            "lastSlot": utc_text(self.last_slot),
            "lastOutcome": self.last_outcome,
            "lastScheduleTime": utc_text(self.last_schedule),
            "lastSuccessfulTime": utc_text(self.last_successful),
            "active": None if self.active is None else list(self.active),
        }


def utc_text(moment: datetime | None) -> str | None:
    """An aware time as ISO 8601 in UTC to the second, with 'Z'."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
