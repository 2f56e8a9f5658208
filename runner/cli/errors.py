"""How the CLI reports errors: the one format, and acting on several names as kubectl does."""

from __future__ import annotations

from collections.abc import Callable

import click

from runner.errors import ManifestError, RunnerError


def format_error(error: RunnerError) -> str:
    lines = error.problems if isinstance(error, ManifestError) else [f"error: {error.message}"]
    if error.hint:
        lines = [*lines, f"hint: {error.hint}"]
    return "\n".join(lines)


def for_each(names: tuple[str, ...], act: Callable[[str], str]) -> None:
    """act on every name and print what it says, as kubectl does with several names: one that fails
    (not found, refused) is reported and the others are still handled; the exit code is the worst."""
    failed: list[RunnerError] = []
    for name in names:
        try:
            click.echo(act(name))
        except RunnerError as error:
            failed.append(error)
    if not failed:
        return
    if len(failed) == 1:
        raise failed[0]  # the error boundary reports it (with a traceback under --debug)
    for each in failed:
        click.echo(format_error(each), err=True)
    raise click.exceptions.Exit(max(each.exit_code for each in failed))
