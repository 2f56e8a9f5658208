"""The JSON lines of training.jsonl and system.jsonl: made, and read back (pure).

training.jsonl, one object per line:
    {"kind": "begin", "time": T, "epochs": 5, "steps": 469}           training starts (what is known)
    {"kind": "batch", "time": T, "epoch": 1, "batch": 100, "step": 100, "metrics": {"loss": 0.41}}
    {"kind": "epoch", "time": T, "epoch": 1, "metrics": {"loss": 0.3, "val_loss": 0.2, ...}}
Epochs count from 1. A value that is not a finite number is null (JSON has no NaN).

system.jsonl, one sample per line:
    {"time": T, "cpu": 187.5, "memory": 1073741824, "processes": 3,
     "gpus": [{"index": 0, "uuid": "GPU-...", "name": "NVIDIA H200", "utilization": 97.0,
               "memoryUsed": 80123.0, "memoryTotal": 143771.0}]}
cpu is percent of one core (200 = two busy cores), memory the resident bytes of the run's processes,
GPU memory in MiB as nvidia-smi says it; "gpus" is absent where the run holds no GPU.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

Line = dict[str, Any]


def number(value: Any) -> float | None:
    """A metric value as a float; None for what is not a finite number (NaN, inf, text)."""
    if isinstance(value, bool):
        return float(value)
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def values(logs: Mapping[str, Any] | None) -> dict[str, float | None]:
    """Keras logs (names to numbers, tensors or numpy scalars) as plain numbers; what has no number
    (a learning-rate schedule object, say) is left out, a NaN loss is kept as null."""
    result: dict[str, float | None] = {}
    for name, value in (logs or {}).items():
        converted = number(value)
        if converted is not None or _is_nan_like(value):
            result[str(name)] = converted
    return result


def _is_nan_like(value: Any) -> bool:
    try:
        return math.isnan(float(value)) or math.isinf(float(value))
    except (TypeError, ValueError):
        return False


def begin_line(time: float, *, epochs: int | None, steps: int | None) -> Line:
    return {"kind": "begin", "time": time, "epochs": epochs, "steps": steps}


def epoch_line(time: float, epoch: int, logs: Mapping[str, Any] | None) -> Line:
    return {"kind": "epoch", "time": time, "epoch": epoch, "metrics": values(logs)}


def batch_line(time: float, *, epoch: int, batch: int, step: int, logs: Mapping[str, Any] | None) -> Line:
    return {
        "kind": "batch",
        "time": time,
        "epoch": epoch,
        "batch": batch,
        "step": step,
        "metrics": values(logs),
    }


def dumps(line: Line) -> str:
    return json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n"


def parse(text: str) -> list[Line]:
    """The objects of a JSON-lines text; a line being written (no newline yet) or one that is not a JSON
    object is skipped, so a file read while it grows never fails."""
    complete = text if text.endswith("\n") else text.rpartition("\n")[0]
    parsed: list[Line] = []
    for raw in complete.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            parsed.append(line)
    return parsed


def epochs(training: Iterable[Line]) -> list[Line]:
    """The epoch lines, one per epoch (a later line for the same epoch, from a retried attempt, wins),
    in epoch order."""
    by_epoch: dict[int, Line] = {}
    for line in training:
        if line.get("kind") == "epoch" and isinstance(line.get("epoch"), int):
            by_epoch[line["epoch"]] = line
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def metric_names(lines: Iterable[Line]) -> list[str]:
    """Every metric name the lines carry, in first-seen order."""
    names: dict[str, None] = {}
    for line in lines:
        metrics = line.get("metrics")
        if isinstance(metrics, dict):
            names.update(dict.fromkeys(str(name) for name in metrics))
    return list(names)


def latest(training: Iterable[Line]) -> dict[str, float | None]:
    """The newest value of each metric, from epoch and batch lines alike."""
    newest: dict[str, float | None] = {}
    for line in training:
        metrics = line.get("metrics")
        if line.get("kind") in ("epoch", "batch") and isinstance(metrics, dict):
            newest.update({str(name): number(value) for name, value in metrics.items()})
    return newest


def planned_epochs(training: Iterable[Line]) -> int | None:
    """How many epochs the newest `begin` line announced."""
    planned = None
    for line in training:
        if line.get("kind") == "begin" and isinstance(line.get("epochs"), int):
            planned = line["epochs"]
    return planned
