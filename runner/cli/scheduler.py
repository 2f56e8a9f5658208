"""`runner scheduler ...`: this machine's scheduler loop in the foreground (tick until Ctrl-C or SIGTERM,
saying what each slot became), and `install | uninstall` of its systemd user unit. Only click and the
standard library are imported up front; the service layer when a command runs."""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from types import FrameType

    from runner.service.schedules.scheduler import SlotResult, TickResult


@click.group(invoke_without_command=True)
@click.pass_context
def scheduler(ctx: click.Context) -> None:
    """Run the schedules of this machine's backends in the foreground (Ctrl-C stops it).

    \b
    Runs it starts go on when it stops; after downtime a missed schedule runs once.
    `runner scheduler install` keeps it running as a systemd user unit.
    """
    if ctx.invoked_subcommand is not None:
        return
    run_scheduler()


@scheduler.command()
@click.option("--dry-run", is_flag=True, help="Print the unit instead of installing it.")
@click.option("--no-start", is_flag=True, help="Write the unit but do not enable or start it.")
def install(dry_run: bool, no_start: bool) -> None:
    """Install the scheduler as a systemd user unit and start it."""
    from runner.render.systemd import render_scheduler_unit
    from runner.service.schedules.systemd_unit import ENABLE_COMMANDS, runner_command, systemctl, write_unit

    if dry_run:
        click.echo(render_scheduler_unit(runner_command(), os.environ), nl=False)
        return
    change = write_unit(os.environ, runner_command())
    click.echo(f"{'wrote' if change.changed else 'unchanged'}: {change.path}")
    if no_start:
        click.echo("start it with: " + " && ".join(" ".join(command) for command in ENABLE_COMMANDS))
        return
    systemctl(ENABLE_COMMANDS, then=f"the unit is written to {change.path}")
    click.echo("started: runner-scheduler.service (journalctl --user -u runner-scheduler -f shows it)")


@scheduler.command()
def uninstall() -> None:
    """Stop the scheduler unit and remove it. Runs it started go on."""
    from runner.errors import RunnerError
    from runner.service.schedules.systemd_unit import DISABLE_COMMANDS, remove_unit, systemctl, unit_path

    if unit_path(os.environ).exists():
        try:
            systemctl(DISABLE_COMMANDS, then="the unit file is removed anyway")
        except RunnerError as error:  # no user manager: nothing runs it, so removing the file is enough
            click.echo(f"warning: {error.message}", err=True)
    change = remove_unit(os.environ)
    click.echo(f"{'removed' if change.changed else 'not installed'}: {change.path}")


# --- the loop in the foreground --------------------------------------------------------------------------


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
    from runner.config import load_settings
    from runner.service.runs import RunService
    from runner.service.schedules.local import RunLauncher
    from runner.service.schedules.scheduler import Scheduler

    settings = load_settings()
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_signal)
    launcher = RunLauncher(RunService(settings), progress=lambda line: None)
    loop = Scheduler(settings, launcher=launcher, report=lambda result: say(describe_slot(result)))
    say(f"starting (home {settings.home}); runs it starts go on when it stops")
    loop.run_forever(stop.is_set, on_tick=_Standing(loop.holder))
    say("stopped")
