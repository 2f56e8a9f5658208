"""`runner wait`: block until runs are launched or finished, for scripts after `runner submit -d`."""

from __future__ import annotations

import click

from runner.cli import params
from runner.cli.errors import for_each
from runner.cli.session import service

DEFAULT_TIMEOUT = "30m"


@click.command("wait")
@click.argument(
    "runs_to_wait", metavar="RUN...", nargs=-1, required=True, shell_complete=params.complete_runs
)
@click.option(
    "--for",
    "until",
    type=click.Choice(["launched", "finished"]),
    default="finished",
    show_default=True,
    help="launched: its image built and its job started (a cluster run: its Job created); "
    "finished: ended and collected.",
)
@click.option(
    "--timeout",
    default=DEFAULT_TIMEOUT,
    show_default=True,
    callback=params.duration,
    metavar="DURATION",
    help="Give up after this long (30s, 10m, 2h), for each run.",
)
def wait(runs_to_wait: tuple[str, ...], until: str, timeout: int) -> None:
    """Wait until runs are launched or finished, and print each one's state.

    \b
    Exit codes: 0 every run got there (and, with --for finished, succeeded); with --for finished, a run's
    own exit code as `runner submit` gives it (the worst of several); 1 a run was never launched (its
    build failed) or the wait timed out.
    """
    from runner.service.outcomes import exit_code_of
    from runner.service.waiting import Until, wait_for

    runs = service()
    wanted = Until(until)
    codes: list[int] = []

    def await_run(reference: str) -> str:
        run_id = runs.get(reference).id
        record = wait_for(
            lambda: runs.get(run_id), wanted, timeout, runs.clock, params.shown_duration(timeout)
        )
        if wanted is Until.FINISHED:
            codes.append(exit_code_of(record))
        return f"run {record.id} {record.state.value}"

    for_each(runs_to_wait, await_run)
    if any(codes):
        raise click.exceptions.Exit(max(codes))
