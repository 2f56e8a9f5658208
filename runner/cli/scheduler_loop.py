"""`runner scheduler` in the foreground: tick until Ctrl-C or SIGTERM, saying what each slot became."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from runner.config import load_settings
from runner.service.runs import RunService
from runner.service.scheduler import Scheduler, SlotResult, TickResult
from runner.service.schedules import RunLauncher


def say(message: str) -> None:
    click.echo(f"scheduler: {message}", err=True)


def describe_slot(result: SlotResult) -> str:
    slot = result.slot.isoformat(timespec="minutes").replace("+00:00", "Z")
    run = f" {result.run_id}" if result.run_id else ""
    note = f" ({result.message})" if result.message else ""
    return f"{result.schedule} slot {slot}: {result.outcome.value}{run}{note}"


class _Standing:
    """Says once when this scheduler becomes active or stands by, not on every tick."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self.active: bool | None = None

    def __call__(self, result: TickResult) -> None:
        if result.active == self.active:
            return
        self.active = result.active
        if result.active:
            say(f"active as {self.holder}")
        else:
            say(f"standing by: {result.holder} holds the lease; taking over if it stops renewing it")


def run_scheduler() -> None:
    settings = load_settings()
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_signal)
    launcher = RunLauncher(RunService(settings), progress=lambda line: None)
    scheduler = Scheduler(settings, launcher=launcher, report=lambda result: say(describe_slot(result)))
    say(f"starting (home {settings.home}); runs it starts go on when it stops")
    scheduler.run_forever(stop.is_set, on_tick=_Standing(scheduler.holder))
    say("stopped")
