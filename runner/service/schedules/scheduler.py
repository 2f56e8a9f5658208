"""The scheduler loop behind `runner scheduler`: it starts the due slots of this machine's schedules.

One scheduler is active per runner home: it holds the lease in the database and renews it on every
tick. Others started beside it (a second terminal, a restarted service whose old process lingers)
wait as standbys and take over once the lease expires, within LEASE_SECONDS of the active one
dying; a scheduler that stops cleanly gives the lease up at once. Even two actives could not run a
slot twice: a slot is claimed by one INSERT on the (schedule, slot) key before anything starts.

Each tick reads every schedule of a local backend (process, docker; cluster schedules are CronJobs),
asks slots.py what is due and acts: claim the slot, cancel (Replace), launch through the
Launcher, record the outcome. Between ticks it sleeps on its clock until the next slot, at most
MAX_SLEEP_SECONDS so that schedules applied meanwhile are seen, checking for a stop every second.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from runner.backends.local.family import LOCAL_BACKENDS
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings
from runner.records.schedules import SCHEDULER_LEASE, ScheduleRecord, ScheduleRecords, SlotOutcome
from runner.service.runs import RunService
from runner.service.schedules.local import Launcher, RunLauncher
from runner.service.schedules.slots import Action, decide, due_slot, instant, next_slot

LEASE_SECONDS = 90.0
MAX_SLEEP_SECONDS = 30.0
STOP_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class SlotResult:
    """What became of one slot this scheduler handled."""

    schedule: str
    slot: datetime  # aware, UTC
    outcome: SlotOutcome
    run_id: str | None = None
    message: str = ""


@dataclass(frozen=True)
class TickResult:
    active: bool  # whether this scheduler held the lease and handled the schedules
    holder: str  # who holds the lease
    results: tuple[SlotResult, ...]
    wake_at: float  # when the next tick is due, seconds since the epoch


def default_holder() -> str:
    """A name for this scheduler process, unique even when a pid is reused: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        *,
        launcher: Launcher | None = None,
        holder: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        max_sleep: float = MAX_SLEEP_SECONDS,
        report: Callable[[SlotResult], None] = lambda result: None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SYSTEM_CLOCK
        self.launcher: Launcher = launcher or RunLauncher(RunService(settings))
        self.holder = holder or default_holder()
        self.lease_seconds = lease_seconds
        self.max_sleep = max_sleep
        self.report = report
        self.records = ScheduleRecords(settings.database)

    def tick(self) -> TickResult:
        """Take or renew the lease; if held, handle every due slot. Never sleeps."""
        now = self.clock.time()
        lease = self.records.acquire_lease(SCHEDULER_LEASE, self.holder, now, self.lease_seconds)
        if lease.holder != self.holder:
            return TickResult(False, lease.holder, (), min(lease.expires, now + self.max_sleep))
        results: list[SlotResult] = []
        for schedule in self.records.all():
            if schedule.backend not in LOCAL_BACKENDS:
                continue
            if not self._renew():
                break  # slow launches let the lease lapse and a standby took over: it carries on
            result = self._handle(schedule)
            if result is not None:
                results.append(result)
                self.report(result)
        return TickResult(True, self.holder, tuple(results), self._wake_at())

    def run_forever(
        self, stop: Callable[[], bool], on_tick: Callable[[TickResult], None] = lambda result: None
    ) -> None:
        """Tick until stop() says so, sleeping on the clock in between; gives the lease up on the way out.
        on_tick sees every tick's result (the CLI says when this scheduler becomes active or stands by)."""
        try:
            while not stop():
                result = self.tick()
                on_tick(result)
                wake_at = result.wake_at
                while not stop() and (remaining := wake_at - self.clock.time()) > 0:
                    self.clock.sleep(min(remaining, STOP_CHECK_SECONDS))
        finally:
            self.close()

    def close(self) -> None:
        """Give the lease up, so that a standby takes over at once."""
        self.records.release_lease(SCHEDULER_LEASE, self.holder)

    def _renew(self) -> bool:
        lease = self.records.acquire_lease(
            SCHEDULER_LEASE, self.holder, self.clock.time(), self.lease_seconds
        )
        return lease.holder == self.holder

    def _handle(self, schedule: ScheduleRecord) -> SlotResult | None:
        now = instant(self.clock.time())
        if due_slot(schedule, now) is None:
            return None
        active = [] if schedule.concurrency == "Allow" else self.launcher.active_runs(schedule.name)
        decision = decide(schedule, now, [run.id for run in active])
        if decision is None:
            return None
        slot = decision.slot.timestamp()
        if not self.records.claim_slot(
            schedule.name, slot, self.clock.time(), expect_updated=schedule.updated
        ):
            return None  # handled by another scheduler, or the schedule changed since it was read
        if decision.action in (Action.SKIP, Action.MISS):
            outcome = SlotOutcome.SKIPPED if decision.action is Action.SKIP else SlotOutcome.MISSED
            return self._finish(schedule, decision.slot, outcome, None, decision.reason)
        notes = [decision.reason] if decision.reason else []
        for run in active:
            if run.id in decision.cancel:
                try:
                    self.launcher.cancel(run)
                except Exception as error:  # the new run starts anyway, as with a CronJob
                    notes.append(f"cancelling {run.id} failed: {error}")
        try:
            started = self.launcher.launch(schedule)
        except Exception as error:  # one schedule's failure must not stop the others
            return self._finish(
                schedule, decision.slot, SlotOutcome.FAILED, None, "; ".join([*notes, str(error)])
            )
        return self._finish(schedule, decision.slot, SlotOutcome.STARTED, started.id, "; ".join(notes))

    def _finish(
        self, schedule: ScheduleRecord, slot: datetime, outcome: SlotOutcome, run_id: str | None, message: str
    ) -> SlotResult:
        self.records.finish_slot(
            schedule.name, slot.timestamp(), outcome, self.clock.time(), run_id=run_id, message=message
        )
        return SlotResult(schedule.name, slot, outcome, run_id, message)

    def _wake_at(self) -> float:
        now = self.clock.time()
        wake = now + self.max_sleep
        for schedule in self.records.all():
            if schedule.backend in LOCAL_BACKENDS:
                upcoming = next_slot(schedule, instant(now))
                if upcoming is not None:
                    wake = min(wake, upcoming.timestamp())
        return wake
