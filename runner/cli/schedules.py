"""`runner scheduler` (the local scheduler, in the foreground or as a systemd user unit)."""

from __future__ import annotations

import os
from pathlib import Path

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
    from runner.cli.scheduler_loop import run_scheduler

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


# --- runner schedule ---------------------------------------------------------------------------------

BACKENDS = click.Choice(["auto", "process", "docker", "kubernetes"])
SCHEDULE_FORMATS = click.Choice(["table", "json", "yaml", "name"])
cluster_option = click.option(
    "--cluster", is_flag=True, help="Act on the cluster's CronJobs instead of this machine's schedules."
)
namespace_option = click.option(
    "-n", "--namespace", help="With --cluster: the namespace (default: the kubeconfig context's)."
)


@click.group()
def schedule() -> None:
    """Recurring jobs: a manifest with spec.schedule, run by `runner scheduler` here or as a CronJob.

    \b
    runner schedule apply jobs/regression/nightly.yaml      # this machine (runner scheduler runs it)
    runner schedule apply FILE --backend kubernetes        # a CronJob on the cluster
    runner schedule list [--cluster]
    """


@schedule.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--backend", type=BACKENDS, help="Where its runs go (default: $RUNNER_BACKEND).")
@namespace_option
@click.option("--dry-run", is_flag=True, help="With --backend kubernetes: print the objects, send nothing.")
def apply(file: Path, backend: str | None, namespace: str | None, dry_run: bool) -> None:
    """Create or update the schedule of FILE (its manifest is kept as applied: apply again after edits)."""
    from runner.cli.scheduling import apply_schedule

    apply_schedule(file, backend, namespace, dry_run)


@schedule.command(name="list")
@click.option("-o", "--output", "fmt", type=SCHEDULE_FORMATS, default="table", show_default=True)
@cluster_option
@namespace_option
def list_schedules(fmt: str, cluster: bool, namespace: str | None) -> None:
    """List schedules with their next run and the result of their last run."""
    from runner.cli.scheduling import show_schedules

    show_schedules(fmt, cluster, namespace)


@schedule.command()
@click.argument("names", nargs=-1, required=True)
@cluster_option
@namespace_option
def pause(names: tuple[str, ...], cluster: bool, namespace: str | None) -> None:
    """Stop starting runs of these schedules (runs under way go on)."""
    from runner.cli.scheduling import set_paused

    set_paused(names, cluster, namespace, paused=True)


@schedule.command()
@click.argument("names", nargs=-1, required=True)
@cluster_option
@namespace_option
def resume(names: tuple[str, ...], cluster: bool, namespace: str | None) -> None:
    """Start runs again from the next slot (slots that passed while paused do not run).

    \b
    On a cluster Kubernetes decides: the latest slot missed while paused still starts at once if it
    is within the schedule's startingDeadline (1h by default).
    """
    from runner.cli.scheduling import set_paused

    set_paused(names, cluster, namespace, paused=False)


@schedule.command()
@click.argument("name")
@cluster_option
@namespace_option
def trigger(name: str, cluster: bool, namespace: str | None) -> None:
    """Start a run of the schedule now; prints its run id (`runner logs -f RUN` follows it)."""
    from runner.cli.scheduling import trigger_schedule

    trigger_schedule(name, cluster, namespace)


@schedule.command()
@click.argument("names", nargs=-1, required=True)
@cluster_option
@namespace_option
def delete(names: tuple[str, ...], cluster: bool, namespace: str | None) -> None:
    """Delete schedules. Their past runs stay in the records and the store."""
    from runner.cli.scheduling import delete_schedules

    delete_schedules(names, cluster, namespace)


@schedule.command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table")
def history(name: str, limit: int, fmt: str) -> None:
    """What became of a local schedule's recent slots: started, skipped (Forbid), missed, failed."""
    from runner.cli.scheduling import show_history

    show_history(name, limit, fmt)
