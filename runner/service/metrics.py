"""Read-only views of a run for `runner metrics` and `runner ui`: its telemetry and its log's tail.

A run's telemetry (runner.metrics) is JSON lines under its outputs: in a local run's work directory
while it runs there, in the store once collected (and, for cluster runs, while they run: the agent
uploads it every few seconds). Whichever is there is read; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunnerError
from runner.metrics import SYSTEM_PATH, TRAINING_PATH
from runner.metrics.lines import Line, parse
from runner.records import RunRecord
from runner.service.runs import RunService
from runner.store import open_store
from runner.store.collect import run_prefix

LOG_TAIL_BYTES = 64 * 1024
FOLLOW_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Telemetry:
    record: RunRecord
    training: list[Line]
    system: list[Line]


def read_telemetry(runs: RunService, record: RunRecord) -> Telemetry:
    """The run's training and system lines as they are now (empty lists where it has none yet)."""
    return Telemetry(
        record=record,
        training=parse(_read_output(record, TRAINING_PATH)),
        system=parse(_read_output(record, SYSTEM_PATH)),
    )


def follow_telemetry(
    runs: RunService,
    record: RunRecord,
    *,
    current: Callable[[], RunRecord] | None = None,
    poll: float = FOLLOW_POLL_SECONDS,
) -> Iterator[Telemetry]:
    """The run's telemetry now, then again every poll seconds until the run is final (that last read
    included). current: how the run is read again (the service's get, brought up to date)."""
    again = current or (lambda: runs.get(record.id))
    while True:
        yield read_telemetry(runs, record)
        if record.state.final:
            return
        runs.clock.sleep(poll)
        record = again()


def _read_output(record: RunRecord, path: str) -> str:
    """An outputs file of the run: from its work directory while that has it, else from the store."""
    if record.workdir:
        local = Path(record.workdir) / "outputs" / path
        try:
            return local.read_text(encoding="utf-8", errors="replace")
        except OSError:
            pass
    try:
        store = open_store(record.store_url)
        data = store.get_bytes(f"{run_prefix(record.job, record.id)}/outputs/{path}")
    except RunnerError:  # not there (yet), or the store cannot be read now: no lines, not an error
        return ""
    return data.decode("utf-8", errors="replace")


def log_tail(runs: RunService, record: RunRecord, limit: int = LOG_TAIL_BYTES) -> tuple[str, bool]:
    """The end of the run's log (every attempt, in order; the chief's, worker 0's, in a multi-worker run)
    as text, and whether earlier bytes were cut."""
    kept = bytearray()
    cut = False
    for chunk in runs.logs_of(record, worker=0):
        kept += chunk.data
        if len(kept) > limit:
            del kept[: len(kept) - limit]
            cut = True
    text = kept.decode("utf-8", errors="replace")
    if cut:
        text = text.partition("\n")[2]  # from the first whole line
    return text, cut
