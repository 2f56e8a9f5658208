"""`runner artifacts`: list a run's collected files, or download them with their checksums verified."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.cli.session import service
from runner.cli.streaming import say_refused


@click.command()
@click.argument("run")
@click.option("--download", "destination", type=click.Path(path_type=Path), help="Copy the files into DIR.")
@click.option(
    "--file",
    "only",
    metavar="PATH",
    help="Only this file (a PATH the listing shows): to stdout, or into DIR with --download.",
)
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table")
def artifacts(run: str, destination: Path | None, only: str | None, fmt: str) -> None:
    """List a run's artifacts (size, sha256), or download them and verify their checksums.

    RUN is a run id, or a job name: its latest succeeded run (the store's `latest`).
    """
    from runner.cli.output import human_size, structured, table

    runs = service()
    record, note = runs.artifacts_run(run)
    if note:
        click.echo(f"# {note}", err=True)
    if only is not None and destination is None:
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            _, (entry,) = runs.download(record.id, Path(scratch), only=only)
            with (Path(scratch) / entry.path).open("rb") as source:
                import shutil

                shutil.copyfileobj(source, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        return
    if destination is not None:
        record, files = runs.download(record.id, destination, only=only)
        click.echo(f"downloaded {len(files)} files of run {record.id} to {destination} (checksums verified)")
        return
    record, files = runs.artifacts(record.id)
    if fmt != "table":
        data = {
            "run": record.id,
            "location": runs.location(record),
            "files": [vars(entry) for entry in files],
            "refused": [{"path": path, "reason": reason} for path, reason in runs.refused(record)],
        }
        click.echo(structured(data, fmt), nl=False)
        return
    click.echo(f"# {runs.location(record)}", err=True)
    rows = [[entry.path, human_size(entry.size), entry.sha256[:16]] for entry in files]
    click.echo(table(["PATH", "SIZE", "SHA256"], rows), nl=False)
    say_refused(runs.refused(record))
