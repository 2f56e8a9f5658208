"""`runner resident status|stop`: the resident server of this installation, for this user."""

from __future__ import annotations

import time

import click


@click.group()
def resident() -> None:
    """The resident runner (RUNNER_RESIDENT=1): a process that keeps runner's modules loaded, so that
    each command starts in milliseconds."""


@resident.command()
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "yaml"]), default="text")
def status(fmt: str) -> None:
    """Whether a resident server answers, and since when. Exit 1 when none does."""
    from runner.cli.resident.client import ask  # sockets: only for this command

    answer = ask("status")
    about = answer[1] if answer and answer[0] == "status" else None
    if fmt != "text":
        from runner.cli.output import structured  # yaml: only for -o

        click.echo(structured({"running": about is not None, **(about or {})}, fmt), nl=False)
    elif about is None:
        click.echo("no resident server; the next command with RUNNER_RESIDENT=1 starts one")
    else:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(str(about["started"]))))
        click.echo(f"resident server {about['pid']} serving since {since} ({about['python']})")
    if about is None:
        raise SystemExit(1)


@resident.command()
def stop() -> None:
    """Stop the resident server; commands run in their own processes until the next one starts."""
    from runner.cli.resident.client import ask

    answer = ask("stop")
    if answer and answer[0] == "stopping":
        click.echo(f"resident server {answer[1]['pid']} stopped")
    else:
        click.echo("no resident server was running")
