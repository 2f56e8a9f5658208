"""`runner list`: runs, newest first, filtered by job, state and labels, this machine's and a cluster's."""

from __future__ import annotations

import click

from runner.cli import params
from runner.cli.session import now, service

OUTPUT_FORMATS = click.Choice(["table", "wide", "json", "yaml", "name"])


RUN_STATES = (
    "building",
    "pending",
    "running",
    "succeeded",
    "failed",
    "timed-out",
    "cancelled",
    "lost",
    "collecting",
    "uncollected",
)


def _states(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """--state, repeatable and comma-separated: every one a run state (exit 2 naming the valid ones)."""
    states = tuple(part.strip() for value in values for part in value.split(",") if part.strip())
    unknown = [state for state in states if state not in RUN_STATES]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(map(repr, unknown))}: not a run state; choose from {', '.join(RUN_STATES)}",
            ctx=ctx,
            param=param,
        )
    return states


@click.command(name="list")
@click.option("--job", help="Only runs of this job.")
@click.option(
    "--state",
    "states",
    multiple=True,
    callback=_states,
    metavar="STATE[,STATE]",
    help=f"Only runs in these states (repeatable): {', '.join(RUN_STATES)}.",
)
@click.option(
    "-l",
    "--selector",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only runs whose labels match, as kubectl: key=value, key!=value, key, !key; comma-separated "
    "or repeated, all must match.",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("-o", "--output", "fmt", type=OUTPUT_FORMATS, default="table", show_default=True)
@click.option("--cluster", is_flag=True, help="Also find runner Jobs on the cluster (by their labels).")
@click.option("-n", "--namespace", help="With --cluster: the namespace (default: the kubeconfig context's).")
@params.context_option
def list_runs(
    *,
    job: str | None,
    states: tuple[str, ...],
    selector: tuple[str, ...],
    limit: int,
    fmt: str,
    cluster: bool,
    namespace: str | None,
) -> None:
    """List runs, newest first.

    \b
    runner list --state failed,timed-out
    runner list -l team=vision -l runner.dev/schedule
    """
    from runner.cli.output import run_document, run_rows, structured, table
    from runner.records import RunState
    from runner.service.selectors import parse_selector

    requirements = parse_selector(selector)
    runs = service()
    records = runs.list_runs(
        job=job,
        limit=limit,
        cluster=cluster,
        cluster_namespace=namespace,
        states={RunState(state) for state in states},
        selector=requirements,
    )
    filtered = bool(states or selector)
    if fmt == "name":
        click.echo("".join(f"{record.id}\n" for record in records), nl=False)
    elif fmt in ("json", "yaml"):
        click.echo(structured([run_document(r, runs.location(r)) for r in records], fmt), nl=False)
    elif not records and (job is not None or filtered):
        others = runs.list_runs(limit=1)
        what = f"No runs of job {job!r}" if job is not None else "No runs"
        if filtered:
            what += " match the --state and -l given"
        click.echo(
            f"{what}." + (" `runner list` shows every job's runs." if others else ""),
            err=True,
        )
    elif not records:
        click.echo("No runs yet. Try: runner submit jobs/mnist/job.yaml", err=True)
    else:
        headers, rows = run_rows(records, now())
        if fmt == "wide":
            headers = [*headers, "MESSAGE"]
            rows = [[*row, record.message] for row, record in zip(rows, records, strict=True)]
        click.echo(table(headers, rows), nl=False)
