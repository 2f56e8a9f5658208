"""`runner delete` and `runner prune`: removing runs, their work directories, artifacts and job images."""

from __future__ import annotations

import sys

import click

from runner.cli import params
from runner.cli.errors import for_each
from runner.cli.session import service
from runner.errors import RunnerError

DEFAULT_PRUNE_AGE = "30d"


@click.command()
@click.argument(
    "runs_to_delete", metavar="RUN...", nargs=-1, required=True, shell_complete=params.complete_runs
)
@click.option("--artifacts", is_flag=True, help="Also delete the runs' artifacts from the store.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
def delete(runs_to_delete: tuple[str, ...], artifacts: bool, dry_run: bool) -> None:
    """Delete finished runs: their record and work directory (on a cluster, their Job too); with
    --artifacts, their files in the store. A run still going is refused: runner cancel it first.

    \b
    Exit codes: 0 all deleted; 1 a run was not found or could not be deleted; 2 a run is still going.
    """
    runs = service()

    def remove(reference: str) -> str:
        removal, notes = runs.delete(reference, artifacts=artifacts, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        said = f"run {removal.run.id} {verb}: " + ", ".join(removal.parts)
        return said + "".join(f" ({note})" for note in notes)

    for_each(runs_to_delete, remove)


@click.command()
@click.option(
    "--older-than",
    default=DEFAULT_PRUNE_AGE,
    show_default=True,
    callback=params.duration,
    metavar="DURATION",
    help="Runs that finished longer ago than this (30s, 12h, 7d).",
)
@click.option("--job", help="Only this job's runs and images.")
@click.option("--artifacts", is_flag=True, help="Also delete the pruned runs' artifacts from the store.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def prune(older_than: int, job: str | None, artifacts: bool, dry_run: bool) -> None:
    """Remove finished runs older than a duration (records and work directories, and with --artifacts
    their store files), records of submits that never started, and job images on this machine's Docker
    engine that no remaining run uses (each job's newest image is kept).
    """
    runs = service()
    old = runs.prune_runs(older_than=older_than, job=job)
    verb = "would remove" if dry_run else "removed"
    failed = False
    for record in old:
        try:
            _, notes = runs.delete(record.id, artifacts=artifacts, dry_run=dry_run)
        except RunnerError as error:  # one run that cannot go does not stop the rest
            failed = True
            click.echo(f"run {record.id}: {error.message}", err=True)
            continue
        click.echo(f"{verb} run {record.id} ({record.state.value})" + "".join(f"; {n}" for n in notes))
    gone = {record.id for record in old}
    keep = [record for record in runs.list_runs() if record.id not in gone]
    for reference, refused in runs.prune_images(job=job, keep=keep, dry_run=dry_run):
        if refused:
            failed = True
            click.echo(f"image {reference}: not removed: {refused}", err=True)
        else:
            click.echo(f"{verb} image {reference}")
    if not old:
        click.echo(f"No runs finished more than {params.shown_duration(older_than)} ago.", err=True)
    if failed:
        sys.exit(1)
