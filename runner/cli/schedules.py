"""`runner scheduler` (the local scheduler, in the foreground or as a systemd user unit)."""

from __future__ import annotations

import os

import click


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
    from runner.cli.scheduling import run_scheduler

    run_scheduler()


@scheduler.command()
@click.option("--dry-run", is_flag=True, help="Print the unit instead of installing it.")
@click.option("--no-start", is_flag=True, help="Write the unit but do not enable or start it.")
def install(dry_run: bool, no_start: bool) -> None:
    """Install the scheduler as a systemd user unit and start it."""
    from runner.render.systemd import render_scheduler_unit
    from runner.service.unit import ENABLE_COMMANDS, runner_command, systemctl, write_unit

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
    from runner.service.unit import DISABLE_COMMANDS, remove_unit, systemctl, unit_path

    if unit_path(os.environ).exists():
        try:
            systemctl(DISABLE_COMMANDS, then="the unit file is removed anyway")
        except RunnerError as error:  # no user manager: nothing runs it, so removing the file is enough
            click.echo(f"warning: {error.message}", err=True)
    change = remove_unit(os.environ)
    click.echo(f"{'removed' if change.changed else 'not installed'}: {change.path}")
