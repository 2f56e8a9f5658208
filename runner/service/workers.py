"""How many workers a run has (spec.workers), for `runner logs` and `runner status`, whatever its backend.

A local run's record says it in its launch details; any run's resolved manifest says it too, and is
read only when it mentions workers at all, so a single-worker run costs no YAML parse.
"""

from __future__ import annotations

from runner.errors import NotFoundError
from runner.records import RunRecord
from runner.workers import count_of


def workers_of(record: RunRecord) -> int:
    """spec.workers of the run (1 when its manifest gives none, or cannot be read)."""
    launched = count_of(record.launch.get("workers"))
    if launched is not None:
        return launched
    if "workers:" not in record.manifest:
        return 1
    import yaml

    try:
        document = yaml.safe_load(record.manifest)
    except yaml.YAMLError:
        return 1
    spec = document.get("spec") if isinstance(document, dict) else None
    return count_of(spec.get("workers") if isinstance(spec, dict) else None) or 1


def check_worker(record: RunRecord, worker: int | None) -> None:
    """Refuse a worker index the run does not have, saying which it has."""
    if worker is None:
        return
    count = workers_of(record)
    if 0 <= worker < count:
        return
    has = "only worker 0" if count == 1 else f"workers 0 to {count - 1}"
    raise NotFoundError(
        f"run {record.id} has no worker {worker}: it has {has}",
        hint=f"runner logs {record.id}" + (f" --worker {count - 1}" if count > 1 else ""),
    )
