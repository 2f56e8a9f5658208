"""What the `runner schedule` commands do: this machine's schedules (ScheduleService) or a cluster's
CronJobs (ClusterSchedules), shown the same way. Imported only when a schedule command runs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from runner.cli.errors import for_each
from runner.cli.output import age, structured, table, timestamp
from runner.config import Settings, load_settings
from runner.service.cluster_schedules import ClusterSchedules
from runner.service.schedules import ApplyResult, ScheduleService, ScheduleView

HEADERS = ["NAME", "BACKEND", "SCHEDULE", "TIMEZONE", "PAUSED", "NEXT RUN", "LAST RUN", "RESULT"]


def progress(message: str) -> None:
    click.echo(message, err=True)


def local_schedules(settings: Settings | None = None) -> ScheduleService:
    return ScheduleService(settings or load_settings())


def cluster_schedules(settings: Settings | None = None) -> ClusterSchedules:
    return ClusterSchedules(settings or load_settings())


def moment(value: datetime | None) -> str:
    """A next-run time as people read it: local to the schedule's zone, with the zone's abbreviation."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M %Z")


def wants_cluster(backend: str | None, settings: Settings) -> bool:
    return (backend or settings.backend) == "kubernetes"


# --- apply -----------------------------------------------------------------------------------------------


def apply_schedule(file: Path, backend: str | None, namespace: str | None, dry_run: bool) -> None:
    settings = load_settings()
    if not wants_cluster(backend, settings):
        if dry_run or namespace:
            raise click.UsageError("--dry-run and --namespace apply to --backend kubernetes only")
        service = local_schedules(settings)
        record, result = service.apply(file, backend)
        upcoming = moment(service.next_run(record))
        click.echo(f"schedule/{record.name} {result.value} ({record.backend}; next run {upcoming})")
        if result is not ApplyResult.UNCHANGED:
            click.echo(
                "runner scheduler starts its runs (runner scheduler install keeps it running)", err=True
            )
        return
    cluster = cluster_schedules(settings)
    if dry_run:
        from runner.render import to_yaml

        click.echo(to_yaml(cluster.render(file, namespace)), nl=False)
        return
    applied = cluster.apply(file, namespace, progress)
    verb = "created" if applied.created else "configured"
    click.echo(f"cronjob.batch/{applied.name} {verb} in {applied.namespace}")


# --- list ------------------------------------------------------------------------------------------------


def local_row(view: ScheduleView, now: float) -> list[str]:
    record = view.schedule
    last = view.last_run
    return [
        record.name,
        record.backend,
        record.cron,
        record.time_zone,
        "yes" if view.paused else "no",
        moment(view.next_run),
        "-" if last is None else f"{last.id} ({age(last.created, now)} ago)",
        "-" if last is None else last.state.value,
    ]


def local_document(view: ScheduleView) -> dict[str, Any]:
    record = view.schedule
    return {
        "name": record.name,
        "backend": record.backend,
        "cron": record.cron,
        "timeZone": record.time_zone,
        "concurrency": record.concurrency,
        "paused": record.paused,
        "suspended": record.suspend,
        "manifest": record.manifest_path,
        "nextRun": timestamp(view.next_run.timestamp()) if view.next_run else None,
        "lastRun": record.last_run_id,
        "lastResult": None if view.last_run is None else view.last_run.state.value,
        "lastSlot": timestamp(record.last_slot),
        "lastOutcome": record.last_outcome,
    }


def show_schedules(fmt: str, cluster: bool, namespace: str | None) -> None:
    import time

    now = time.time()
    if cluster:
        views = cluster_schedules().list(namespace)
        names = [view.name for view in views]
        documents = [view.to_dict() for view in views]
        rows = [
            [
                view.name,
                f"kubernetes/{view.namespace}",
                view.cron,
                view.time_zone,
                "yes" if view.suspended else "no",
                moment(view.next_run.astimezone(_zone(view.time_zone)) if view.next_run else None),
                view.last_run or "-",
                "-" if view.last_result is None else str(view.last_result),
            ]
            for view in views
        ]
    else:
        local = local_schedules().list_schedules()
        names = [view.name for view in local]
        documents = [local_document(view) for view in local]
        rows = [local_row(view, now) for view in local]
    if fmt == "name":
        click.echo("".join(f"{name}\n" for name in names), nl=False)
    elif fmt in ("json", "yaml"):
        click.echo(structured(documents, fmt), nl=False)
    elif not rows:
        hint = "runner schedule apply jobs/regression/nightly.yaml" + (
            " --backend kubernetes" if cluster else ""
        )
        click.echo(f"No schedules yet. Try: {hint}", err=True)
    else:
        click.echo(table(HEADERS, rows), nl=False)


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


# --- pause, resume, trigger, delete, history ------------------------------------------------------------


def set_paused(names: tuple[str, ...], cluster: bool, namespace: str | None, *, paused: bool) -> None:
    verb = "paused" if paused else "resumed"
    if cluster:
        service = cluster_schedules()

        def on_cluster(name: str) -> str:
            service.set_paused(name, namespace, paused=paused)
            return f"cronjob.batch/{name} {verb}"

        for_each(names, on_cluster)
        return
    local = local_schedules()

    def here(name: str) -> str:
        if paused:
            local.pause(name)
        else:
            local.resume(name)
        return f"schedule/{name} {verb}"

    for_each(names, here)


def trigger_schedule(name: str, cluster: bool, namespace: str | None) -> None:
    if cluster:
        from runner.service import RunService

        settings = load_settings()
        run_id = cluster_schedules(settings).trigger(name, namespace, RunService(settings).records)
        click.echo(run_id)
        return
    run = local_schedules().trigger(name)
    click.echo(run.id)


def delete_schedules(names: tuple[str, ...], cluster: bool, namespace: str | None) -> None:
    if cluster:
        service = cluster_schedules()

        def on_cluster(name: str) -> str:
            service.delete(name, namespace)
            return f"cronjob.batch/{name} deleted"

        for_each(names, on_cluster)
        return
    local = local_schedules()

    def here(name: str) -> str:
        local.delete(name)
        return f"schedule/{name} deleted"

    for_each(names, here)


def show_history(name: str, limit: int, fmt: str) -> None:
    slots = local_schedules().history(name, limit)
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
            timestamp(slot.slot) or "-",
            "trigger" if slot.manual else "cron",
            slot.outcome.value,
            slot.run_id or "-",
            slot.message,
        ]
        for slot in slots
    ]
    click.echo(table(["SLOT", "BY", "OUTCOME", "RUN", "MESSAGE"], rows), nl=False)
