"""Output for people and scripts: tables, key-value blocks, JSON and YAML. Every function returns text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from runner.config import Settings
from runner.records import RunRecord
from runner.service.workers import workers_of


def cluster_setting_warnings(settings: Settings) -> list[str]:
    """What rendered cluster objects lack without the cluster settings (for stderr: stdout stays YAML)."""
    warnings = []
    if not settings.registry:
        warnings.append(
            "RUNNER_REGISTRY is not set: the image reference is local to this machine and no cluster "
            "can pull it; set RUNNER_REGISTRY=host:port (where `runner build` pushes)"
        )
    if not settings.store_secret:
        warnings.append(
            "RUNNER_STORE_SECRET is not set: the pods get no credentials for the artifact store; set it "
            "to the name of a Secret holding AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    return warnings


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A kubectl-style table: upper-case headers, columns padded by three spaces."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), *rows]
    ]
    return "\n".join(lines) + "\n"


def fields(pairs: Sequence[tuple[str, str]]) -> str:
    """A `describe`-style block of 'Name:  value' lines."""
    width = max(len(name) for name, _ in pairs) + 2
    return "".join(f"{(name + ':').ljust(width)}{value}\n" for name, value in pairs)


def structured(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def age(since: float | None, now: float) -> str:
    """kubectl's compact ages: 45s, 12m, 3h, 5d."""
    if since is None:
        return "-"
    return duration(max(now - since, 0.0))


def duration(seconds: float | None) -> str:
    """Compact durations as kubectl prints ages: 45s, 12m, 3h, 5d."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    if whole < 2 * 3600:
        return f"{whole // 60}m"
    if whole < 2 * 86400:
        return f"{whole // 3600}h"
    return f"{whole // 86400}d"


def timestamp(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_duration(record: RunRecord, now: float) -> float | None:
    if record.started is None:
        return None
    return (record.finished or now) - record.started


def run_document(record: RunRecord, artifacts: str, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run as data for -o json|yaml: stable camelCase keys, ISO-8601 UTC times. stored: its run.json,
    for what only the store knows (refused outputs, the image's digest)."""
    stored = stored or {}
    extra: dict[str, Any] = {}
    if stored:
        extra["refused"] = stored.get("refused") or []
    image, digest = run_image(record, stored)
    if image:
        extra["image"] = {"reference": image, "digest": digest}
    return {
        "id": record.id,
        "job": record.job,
        "state": record.state.value,
        "message": record.message,
        "backend": record.backend,
        "created": timestamp(record.created),
        "started": timestamp(record.started),
        "finished": timestamp(record.finished),
        "attempts": record.attempts,
        "maxAttempts": record.max_attempts,
        "workers": workers_of(record),
        "exitCode": record.exit_code,
        "gpus": record.gpu_indices,
        "labels": record.labels,
        "artifacts": artifacts,
        **extra,
    }


def run_image(record: RunRecord, stored: dict[str, Any]) -> tuple[str | None, str | None]:
    """The job image a run used and its digest: from run.json, else the launch details recorded."""
    image = stored.get("image")
    if isinstance(image, dict):
        return image.get("reference"), image.get("digest")
    reference = record.launch.get("image")
    digest = record.launch.get("image_digest") or record.launch.get("imageDigest")
    return (reference if isinstance(reference, str) else None), digest


def run_rows(records: Sequence[RunRecord], now: float) -> tuple[list[str], list[list[str]]]:
    headers = ["RUN", "JOB", "STATE", "BACKEND", "ATTEMPTS", "EXIT", "DURATION", "AGE"]
    rows = [
        [
            record.id,
            record.job,
            record.state.value,
            record.backend,
            f"{record.attempts}/{record.max_attempts}",
            "-" if record.exit_code is None else str(record.exit_code),
            duration(run_duration(record, now)),
            age(record.created, now),
        ]
        for record in records
    ]
    return headers, rows


def run_fields(record: RunRecord, artifacts: str, now: float, stored: dict[str, Any] | None = None) -> str:
    labels = ",".join(f"{key}={value}" for key, value in sorted(record.labels.items())) or "<none>"
    image, digest = run_image(record, stored or {})
    shown_image = [("Image", image + (f"@{digest}" if digest else ""))] if image else []
    refused = (stored or {}).get("refused") or []
    shown_refused = [("Refused", f"{len(refused)} output(s) not collected (below)")] if refused else []
    return fields(
        [
            ("Run", record.id),
            ("Job", record.job),
            ("State", record.state.value),
            ("Message", record.message or "-"),
            ("Backend", record.backend),
            ("Created", timestamp(record.created) or "-"),
            ("Started", timestamp(record.started) or "-"),
            ("Finished", timestamp(record.finished) or "-"),
            ("Duration", duration(run_duration(record, now))),
            ("Attempts", f"{record.attempts} of {record.max_attempts}"),
            ("Exit code", "-" if record.exit_code is None else str(record.exit_code)),
            ("GPUs", record.gpus or "none"),
            *shown_image,
            ("Labels", labels),
            ("Artifacts", artifacts),
            *shown_refused,
        ]
    )


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{size}B"
