"""`runner metrics`: a run's training metrics (latest values, one row per epoch) and its machine's side."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from runner.cli.session import service

if TYPE_CHECKING:
    from runner.metrics.lines import Line
    from runner.service.metrics import Telemetry

NO_METRICS = (
    "run {run} has no training metrics yet: a job writes them to $RUNNER_METRICS "
    "(Keras: callbacks=[runner.metrics.callback.RunnerMetrics()])"
)
COLUMN = 12


@click.command()
@click.argument("run")
@click.option("-f", "--follow", is_flag=True, help="Go on printing epochs as they end, until the run ends.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]), default="table")
def metrics(run: str, follow: bool, fmt: str) -> None:
    """A run's training metrics: the latest values and a table of its epochs, and its CPU, memory and GPUs.

    RUN is a run id, a unique prefix of one, or a job name (its latest run). With -o json and -f, one
    JSON document per epoch as it ends (JSON lines).
    """
    from runner.service.metrics import follow_telemetry, read_telemetry

    runs = service()
    record = runs.get(run)
    if not follow:
        snapshot = read_telemetry(runs, record)
        if fmt == "json":
            click.echo(json.dumps(document(snapshot), indent=2))
        else:
            click.echo(report(snapshot), nl=False)
        return
    printed = 0
    names: list[str] | None = None
    last: Telemetry | None = None
    for snapshot in follow_telemetry(runs, record):
        last = snapshot
        from runner.metrics.lines import epochs, metric_names

        done = epochs(snapshot.training)
        if fmt == "json":
            for line in done[printed:]:
                click.echo(json.dumps(line))
        elif done[printed:]:
            if names is None:
                names = metric_names(done)
                click.echo(fixed_row(["EPOCH", *[name.upper() for name in names]]))
            for line in done[printed:]:
                click.echo(fixed_row(epoch_row(line, names)))
        printed = len(done)
    if last is not None and fmt != "json":
        click.echo(f"run {last.record.id} {last.record.state}" + ("" if printed else "; " + no_metrics(last)))


def no_metrics(snapshot: Telemetry) -> str:
    return NO_METRICS.format(run=snapshot.record.id)


def value(number: Any) -> str:
    """A metric as a table shows it: 4 significant digits, "-" for none."""
    if number is None:
        return "-"
    if isinstance(number, (int, float)):
        return f"{number:.4g}"
    return str(number)


def epoch_row(line: Line, names: Sequence[str]) -> list[str]:
    metrics = line.get("metrics") or {}
    return [str(line.get("epoch")), *[value(metrics.get(name)) for name in names]]


def fixed_row(cells: Sequence[str]) -> str:
    return "  ".join(cell.ljust(COLUMN) for cell in cells).rstrip()


def gibibytes(size: float) -> str:
    return f"{size / 2**30:.1f} GiB"


def system_summary(sample: Line | None) -> str | None:
    """The newest system sample in one line: CPU, memory, each GPU's utilisation and memory."""
    if sample is None:
        return None
    parts = []
    if sample.get("cpu") is not None:
        parts.append(f"cpu {sample['cpu']:.0f}%")
    if isinstance(sample.get("memory"), int):
        parts.append(f"memory {gibibytes(sample['memory'])}")
    for gpu in sample.get("gpus") or []:
        used, total = gpu.get("memoryUsed"), gpu.get("memoryTotal")
        memory = f" {used / 1024:.1f}/{total / 1024:.1f} GiB" if used is not None and total else ""
        busy = f" {gpu['utilization']:.0f}%" if gpu.get("utilization") is not None else ""
        parts.append(f"gpu{gpu.get('index')} {gpu.get('name')}{busy}{memory}")
    return "  ".join(parts) or None


def report(snapshot: Telemetry) -> str:
    """The table output: where the run is, its latest values, its system, one row per epoch."""
    from runner.cli.output import table
    from runner.metrics.lines import epochs, latest, metric_names, planned_epochs

    record = snapshot.record
    done = epochs(snapshot.training)
    planned = planned_epochs(snapshot.training)
    where = f"epoch {len(done)}" + (f" of {planned}" if planned else "") if done else "no epoch ended yet"
    lines = [f"run {record.id} ({record.state}): {where}"]
    newest = latest(snapshot.training)
    if newest:
        lines.append("latest: " + "  ".join(f"{name} {value(number)}" for name, number in newest.items()))
    system = system_summary(snapshot.system[-1] if snapshot.system else None)
    if system:
        lines.append(f"system: {system}")
    text = "\n".join(lines) + "\n"
    if not snapshot.training:
        return text + no_metrics(snapshot) + "\n"
    if done:
        names = metric_names(done)
        text += "\n" + table(
            ["EPOCH", *[name.upper() for name in names]], [epoch_row(e, names) for e in done]
        )
    return text


def document(snapshot: Telemetry) -> dict[str, Any]:
    from runner.metrics.lines import epochs, latest, planned_epochs

    record = snapshot.record
    return {
        "run": record.id,
        "job": record.job,
        "state": str(record.state),
        "epochsPlanned": planned_epochs(snapshot.training),
        "latest": latest(snapshot.training),
        "epochs": [
            {"epoch": line["epoch"], "time": line.get("time"), "metrics": line.get("metrics") or {}}
            for line in epochs(snapshot.training)
        ],
        "system": snapshot.system[-1] if snapshot.system else None,
    }
