"""`runner schedule ...`: apply, list, pause, resume, trigger, delete and history of schedules.

One Schedules implementation serves each command, chosen in one place (`schedules_for`): this machine's
(LocalSchedules) or, with --cluster or --backend kubernetes, a namespace's CronJobs (ClusterSchedules).
Both show a schedule as the one ScheduleView, so the rest is the same for both. Only click and the
standard library are imported up front; the service layer when a command runs, so `runner --help`
stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner.cli.errors import for_each
from runner.cli.params import F, chosen_context, context_option

if TYPE_CHECKING:
    from runner.config import Settings
    from runner.records.schedule_view import ScheduleView
    from runner.service.schedules import AppliedSchedule, Schedules

BACKENDS = click.Choice(["auto", "process", "docker", "kubernetes"])
SCHEDULE_FORMATS = click.Choice(["table", "json", "yaml", "name"])
HEADERS = ["NAME", "BACKEND", "SCHEDULE", "TIMEZONE", "PAUSED", "NEXT RUN", "LAST RUN", "RESULT"]
EXAMPLE = "runner schedule apply jobs/regression/nightly.yaml"

cluster_option = click.option(
    "--cluster", is_flag=True, help="Act on the cluster's CronJobs instead of this machine's schedules."
)
_namespace = click.option(
    "-n", "--namespace", help="With --cluster: the namespace (default: the kubeconfig context's)."
)


def namespace_option(command: F) -> F:
    """-n/--namespace and --context, as kubectl takes them."""
    return context_option(_namespace(command))


@dataclass(frozen=True)
class ScheduleTarget:
    """The schedules a command acts on, and how the command names them."""

    schedules: Schedules
    noun: str  # schedule/NAME here; cronjob.batch/NAME on a cluster, as kubectl names it
    try_apply: str  # the apply command the empty list suggests
    after_change: str | None  # said (on stderr) after apply creates or changes a schedule


def schedules_for(
    *, cluster: bool, namespace: str | None = None, settings: Settings | None = None
) -> ScheduleTarget:
    """The one place that chooses this machine's schedules or a cluster's (namespace only counts there)."""
    from runner.config import load_settings

    settings = settings or load_settings()
    if cluster:
        from runner.backends.kubernetes.cronjobs import CronJobs
        from runner.service.schedules.cluster import ClusterSchedules

        cronjobs = CronJobs(chosen_context())
        return ScheduleTarget(
            ClusterSchedules(settings, namespace, cronjobs=cronjobs, progress=progress),
            noun="cronjob.batch",
            try_apply=f"{EXAMPLE} --backend kubernetes",
            after_change=None,
        )
    from runner.service.schedules.local import LocalSchedules

    return ScheduleTarget(
        LocalSchedules(settings),
        noun="schedule",
        try_apply=EXAMPLE,
        after_change="runner scheduler starts its runs (runner scheduler install keeps it running)",
    )


def progress(message: str) -> None:
    click.echo(message, err=True)


def moment(value: datetime | None) -> str:
    """A next-run time as people read it: local to the schedule's zone, with the zone's abbreviation."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M %Z")


def placement(applied: AppliedSchedule) -> str:
    """Where an applied schedule runs: a cluster's namespace, or this machine's backend and next run."""
    if applied.namespace is not None:
        return f"in {applied.namespace}"
    return f"({applied.backend}; next run {moment(applied.next_run)})"


def row(view: ScheduleView, now: float) -> list[str]:
    """A schedule's line in the table."""
    from runner.cli.output import age

    if view.last_run is None or view.last_result is None:  # a run no longer known shows as none
        last = "-"
    elif view.last_run_created is None:
        last = view.last_run
    else:
        last = f"{view.last_run} ({age(view.last_run_created.timestamp(), now)} ago)"
    return [
        view.name,
        view.backend if view.namespace is None else f"{view.backend}/{view.namespace}",
        view.cron,
        view.time_zone,
        "yes" if view.paused else "no",
        moment(view.next_run),
        last,
        "-" if view.last_result is None else view.last_result.value,
    ]


# --- runner schedule ---------------------------------------------------------------------------------


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
@click.option(
    "-n",
    "--namespace",
    help="With --backend kubernetes: the CronJob's namespace (default: the manifest's, else the "
    "kubeconfig context's).",
)
@click.option("--dry-run", is_flag=True, help="With --backend kubernetes: print the objects, send nothing.")
@context_option
def apply(file: Path, backend: str | None, namespace: str | None, dry_run: bool) -> None:
    """Create or update the schedule of FILE (its manifest is kept as applied: apply again after edits)."""
    from runner.config import load_settings
    from runner.service.schedules import ApplyResult

    settings = load_settings()
    cluster = (backend or settings.backend) == "kubernetes"
    if not cluster and (dry_run or namespace):
        raise click.UsageError("--dry-run and --namespace apply to --backend kubernetes only")
    target = schedules_for(cluster=cluster, namespace=namespace, settings=settings)
    if dry_run:
        from runner.cli.output import cluster_setting_warnings
        from runner.render import to_yaml

        for warning in cluster_setting_warnings(settings):
            click.echo(f"warning: {warning}", err=True)
        click.echo(to_yaml(target.schedules.render(file)), nl=False)
        return
    applied = target.schedules.apply(file, backend)
    click.echo(f"{target.noun}/{applied.name} {applied.result.value} {placement(applied)}")
    if applied.result is not ApplyResult.UNCHANGED and target.after_change:
        click.echo(target.after_change, err=True)


@schedule.command(name="list")
@click.option("-o", "--output", "fmt", type=SCHEDULE_FORMATS, default="table", show_default=True)
@cluster_option
@namespace_option
def list_schedules(fmt: str, cluster: bool, namespace: str | None) -> None:
    """List schedules with their next run and the result of their last run."""
    import time

    from runner.cli.output import structured, table

    target = schedules_for(cluster=cluster, namespace=namespace)
    views = target.schedules.list_schedules()
    if fmt == "name":
        click.echo("".join(f"{view.name}\n" for view in views), nl=False)
    elif fmt in ("json", "yaml"):
        click.echo(structured([view.to_dict() for view in views], fmt), nl=False)
    elif not views:
        click.echo(f"No schedules yet. Try: {target.try_apply}", err=True)
    else:
        now = time.time()
        click.echo(table(HEADERS, [row(view, now) for view in views]), nl=False)


@schedule.command()
@click.argument("names", nargs=-1, required=True)
@cluster_option
@namespace_option
def pause(names: tuple[str, ...], cluster: bool, namespace: str | None) -> None:
    """Stop starting runs of these schedules (runs under way go on)."""
    target = schedules_for(cluster=cluster, namespace=namespace)

    def paused(name: str) -> str:
        target.schedules.pause(name)
        return f"{target.noun}/{name} paused"

    for_each(names, paused)


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
    target = schedules_for(cluster=cluster, namespace=namespace)

    def resumed(name: str) -> str:
        target.schedules.resume(name)
        return f"{target.noun}/{name} resumed"

    for_each(names, resumed)


@schedule.command()
@click.argument("name")
@cluster_option
@namespace_option
def trigger(name: str, cluster: bool, namespace: str | None) -> None:
    """Start a run of the schedule now; prints its run id (`runner logs -f RUN` follows it)."""
    click.echo(schedules_for(cluster=cluster, namespace=namespace).schedules.trigger(name).id)


@schedule.command()
@click.argument("names", nargs=-1, required=True)
@cluster_option
@namespace_option
def delete(names: tuple[str, ...], cluster: bool, namespace: str | None) -> None:
    """Delete schedules. Their past runs stay in the records and the store."""
    target = schedules_for(cluster=cluster, namespace=namespace)

    def deleted(name: str) -> str:
        target.schedules.delete(name)
        return f"{target.noun}/{name} deleted"

    for_each(names, deleted)


@schedule.command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table")
def history(name: str, limit: int, fmt: str) -> None:
    """What became of a local schedule's recent slots: started, skipped (Forbid), missed, failed."""
    from zoneinfo import ZoneInfo

    from runner.cli.output import structured, table, timestamp

    local = schedules_for(cluster=False).schedules
    slots = local.history(name, limit)
    zone = ZoneInfo(local.get(name).time_zone)  # shown as `schedule list` shows them: in its zone

    def shown(value: float) -> str:  # one column: the zone's wall time with its offset
        return datetime.fromtimestamp(value, zone).isoformat(timespec="minutes")

    documents = [
        {
            "slot": timestamp(slot.slot),
            "outcome": slot.outcome.value,
            "run": slot.run_id,
            "manual": slot.manual,
            "message": slot.message,
        }
        for slot in slots
    ]
    if fmt in ("json", "yaml"):
        click.echo(structured(documents, fmt), nl=False)
        return
    if not slots:
        click.echo(f"schedule {name} has not run yet", err=True)
        return
    rows = [
        [
            shown(slot.slot),
            "trigger" if slot.manual else "cron",
            slot.outcome.value,
            slot.run_id or "-",
            slot.message,
        ]
        for slot in slots
    ]
    click.echo(table(["SLOT", "BY", "OUTCOME", "RUN", "MESSAGE"], rows), nl=False)
