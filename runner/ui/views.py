"""What the dashboard shows, as plain data: runs, their telemetry, artifacts and schedules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from runner.config import format_size
from runner.metrics.lines import Line, epochs, latest, metric_names, planned_epochs
from runner.records import RunRecord, RunState
from runner.records.schedule_view import ScheduleView
from runner.store.collect import FileEntry

STATES = [state.value for state in RunState]
MAX_POINTS = 1500  # per chart: a week of 5-second samples would be 120,000


def thin(lines: list[Line], limit: int = MAX_POINTS) -> list[Line]:
    """At most about limit of the lines, evenly spread, the newest always kept."""
    if len(lines) <= limit:
        return lines
    step = -(-len(lines) // limit)  # ceiling division
    kept = lines[::step]
    return kept if kept[-1] is lines[-1] else [*kept, lines[-1]]


def iso(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def duration(record: RunRecord, now: float) -> str:
    if record.started is None:
        return "-"
    seconds = int((record.finished or now) - record.started)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def run_row(record: RunRecord, now: float) -> dict[str, Any]:
    return {
        "id": record.id,
        "job": record.job,
        "state": record.state.value,
        "backend": record.backend,
        "created": iso(record.created),
        "duration": duration(record, now),
        "attempts": f"{record.attempts}/{record.max_attempts}",
        "message": record.message,
        "final": record.state.final,
    }


def run_detail(record: RunRecord, now: float, location: str) -> dict[str, Any]:
    return {
        **run_row(record, now),
        "started": iso(record.started),
        "finished": iso(record.finished),
        "exitCode": record.exit_code,
        "gpus": record.gpus,
        "labels": record.labels,
        "location": location,
        "collected": record.state.collected,
    }


def series(lines: list[Line]) -> dict[str, list[float | None]]:
    """Each metric's values along the lines (None where a line lacks it)."""
    return {name: [(line.get("metrics") or {}).get(name) for line in lines] for name in metric_names(lines)}


def training_view(training: list[Line]) -> dict[str, Any]:
    """Curves: one series per metric, by epoch, and the batch lines' series by step."""
    done = epochs(training)
    batches = thin(
        [line for line in training if line.get("kind") == "batch" and isinstance(line.get("step"), int)]
    )
    return {
        "planned": planned_epochs(training),
        "epochs": [line["epoch"] for line in done],
        "metrics": {
            name: [(line.get("metrics") or {}).get(name) for line in done] for name in metric_names(done)
        },
        "steps": [line["step"] for line in batches],
        "batchMetrics": {
            name: [(line.get("metrics") or {}).get(name) for line in batches]
            for name in metric_names(batches)
        },
        "latest": latest(training),
    }


def system_view(system: list[Line]) -> dict[str, Any]:
    """Charts: CPU percent and memory in MiB over time, and each GPU's utilisation and memory."""
    system = thin(system)
    times = [line.get("time") for line in system]
    gpus: dict[str, dict[str, list[Any]]] = {}
    for position, line in enumerate(system):
        for gpu in line.get("gpus") or []:
            label = f"gpu{gpu.get('index')} {gpu.get('name')}"
            series = gpus.setdefault(
                label, {"utilization": [None] * len(system), "memory": [None] * len(system)}
            )
            series["utilization"][position] = gpu.get("utilization")
            series["memory"][position] = gpu.get("memoryUsed")
    memory = [line.get("memory") for line in system]
    return {
        "times": [iso(value) if isinstance(value, (int, float)) else None for value in times],
        "cpu": [line.get("cpu") for line in system],
        "memory": [value / 2**20 if isinstance(value, (int, float)) else None for value in memory],
        "gpus": gpus,
    }


def artifact_rows(run_id: str, files: list[FileEntry]) -> list[dict[str, Any]]:
    return [
        {
            "path": entry.path,
            "size": entry.size,
            "sizeText": format_size(entry.size),
            "sha256": entry.sha256,
            "url": f"/runs/{quote(run_id)}/files/{quote(entry.path)}",
        }
        for entry in files
    ]


def schedule_row(view: ScheduleView) -> dict[str, Any]:
    return {
        "name": view.name,
        "job": view.job,
        "backend": view.backend,
        "cron": view.cron,
        "timeZone": view.time_zone,
        "paused": view.paused,
        "nextRun": view.next_run.strftime("%Y-%m-%d %H:%M %Z") if view.next_run else "-",
        "lastRun": view.last_run,
        "lastResult": view.last_result.value if view.last_result else None,
    }
