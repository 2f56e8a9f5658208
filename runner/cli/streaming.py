"""A run's logs and its end, written to the terminal: stdout for the job's own lines, stderr for runner's."""

from __future__ import annotations

import codecs
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from runner.cli.session import now

if TYPE_CHECKING:
    from runner.records import RunRecord
    from runner.service import RunService


def report_end(runs: RunService, record: RunRecord) -> None:
    from runner.cli.output import duration, run_duration

    took = duration(run_duration(record, now()))
    colour = "green" if record.state.value == "succeeded" else "red"
    state = click.style(record.state.value, fg=colour, bold=True)
    detail = f": {record.message}" if record.message and record.message != record.state.value else ""
    click.echo(f"run {record.id} {state} in {took}{detail}", err=True)
    click.echo(f"artifacts: {runs.location(record)}", err=True)
    say_refused(runs.refused(record))


def say_refused(refused: list[tuple[str, str]]) -> None:
    """Outputs the store did not take, on stderr: they are in no artifact list, only in run.json."""
    if not refused:
        return
    click.echo(f"warning: {len(refused)} output(s) refused and not collected:", err=True)
    for path, reason in refused:
        click.echo(f"  {path}: {reason}", err=True)


class LogPrinter:
    """Writes a run's logs to stdout as they come, each line prefixed with the run id when asked, and with
    its worker (`[worker 1] `) in a run of more than one. It remembers how much of each attempt's (and
    worker's) log it wrote, so a second pass (the drain after a cancel) writes only what came since."""

    def __init__(self, run_id: str, *, prefix: bool) -> None:
        label = click.style(f"[{run_id}] ", fg="cyan") if sys.stdout.isatty() else f"[{run_id}] "
        self.label = label.encode() if prefix else b""
        self.workers = 1  # the run's, once stream is given it: more than one prefixes each line's worker
        self.written: dict[tuple[int, int], int] = {}  # (attempt, worker) -> bytes written
        self.attempt = 1
        self.pending: dict[int, bytes] = {}  # worker -> the start of a line not yet ended
        self.said = ""
        # a terminal is shown text: bytes that are not UTF-8 as \xNN escapes (a pipe gets the bytes)
        self.decoders: dict[tuple[int, int], codecs.IncrementalDecoder] | None = (
            {} if sys.stdout.isatty() else None
        )

    def note(self, record: RunRecord) -> None:
        """Say a retry's backoff (the run's message while it waits) in the stream, once."""
        message = record.message
        if message != self.said and "retrying in" in message:
            self.said = message
            self.flush()
            click.echo(message, err=True)

    def write(self, attempt: int, data: bytes, offset: int, worker: int = 0) -> None:
        key = (attempt, worker)
        done, end = self.written.get(key, 0), offset + len(data)
        if end <= done:
            return  # written by an earlier pass
        data = data[max(done - offset, 0) :]
        self.written[key] = end
        if self.decoders is not None:
            decoder = self.decoders.setdefault(key, codecs.getincrementaldecoder("utf-8")("backslashreplace"))
            data = decoder.decode(data).encode()
        if attempt != self.attempt:
            self.attempt = attempt
            self.flush()
            click.echo(f"--- attempt {attempt} ---" if attempt else "--- build ---", err=True)
        label = self._label(worker)
        out = sys.stdout.buffer
        if not label:
            out.write(data)
            out.flush()
            return
        lines = (self.pending.pop(worker, b"") + data).split(b"\n")
        if lines[-1]:
            self.pending[worker] = lines[-1]
        for line in lines[:-1]:
            out.write(label + line + b"\n")
        out.flush()

    def _label(self, worker: int) -> bytes:
        """What each of worker's lines starts with: the run id when asked, the worker in a run of more."""
        return self.label + (f"[worker {worker}] ".encode() if self.workers > 1 else b"")

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for worker, rest in sorted(pending.items()):
            sys.stdout.buffer.write(self._label(worker) + rest + b"\n")
        if pending:
            sys.stdout.buffer.flush()

    def stream(
        self,
        runs: RunService,
        record: RunRecord,
        *,
        follow: bool,
        attempt: int | None,
        worker: int | None = None,
        shown: Callable[[int], bool] = lambda attempt: True,
    ) -> None:
        """shown: whether an attempt's log is wanted at all (--since); worker: only that worker's."""
        from runner.service.workers import workers_of

        self.workers = workers_of(record) if worker is None else 1  # one worker's log: its own bytes
        offsets: dict[tuple[int, int], int] = {}
        try:
            chunks = runs.logs_of(record, follow=follow, attempt=attempt, worker=worker, on_record=self.note)
            for chunk in chunks:
                if not shown(chunk.attempt):
                    continue
                key = (chunk.attempt, chunk.worker)
                offset = offsets.get(key, 0)
                offsets[key] = offset + len(chunk.data)
                self.write(chunk.attempt, chunk.data, offset, chunk.worker)
        finally:
            self.flush()


def stream_logs(
    runs: RunService,
    reference: str,
    *,
    prefix: bool,
    follow: bool = True,
    attempt: int | None = None,
    printer: LogPrinter | None = None,
    tail: int | None = None,
    since: float | None = None,
    worker: int | None = None,
) -> None:
    """Write a run's logs to stdout as they come (see LogPrinter): only the last `tail` lines of what
    is there already, only attempts that ran within the last `since` seconds, and only one worker's,
    when given."""
    from runner.service.workers import check_worker

    record = runs.get(reference)
    check_worker(record, worker)
    if attempt is not None and attempt > record.attempts and (record.state.terminal or not follow):
        from runner.errors import NotFoundError

        had = f"{record.attempts} attempt" + ("" if record.attempts == 1 else "s")
        raise NotFoundError(
            f"run {record.id} has no attempt {attempt}: it has {had} so far"
            + ("" if record.state.terminal else " (-f waits for it)"),
            hint=f"runner logs {record.id}" + (f" --attempt {record.attempts}" if record.attempts else ""),
        )
    printer = printer or LogPrinter(record.id, prefix=prefix)
    ends = runs.attempt_ends(record) if since is not None else {}
    cutoff = now() - since if since is not None else 0.0

    def shown(number: int) -> bool:  # an attempt that has not ended (or that nothing dates) is shown
        return ends.get(number, cutoff) >= cutoff

    if tail is not None:
        logs: dict[tuple[int, int], bytes] = {}
        for chunk in runs.logs_of(record, follow=False, attempt=attempt, worker=worker):
            if shown(chunk.attempt):
                key = (chunk.attempt, chunk.worker)
                logs[key] = logs.get(key, b"") + chunk.data
        printer.written.update(tail_offsets(logs, tail))  # what comes before is taken as written
    printer.stream(runs, record, follow=follow, attempt=attempt, worker=worker, shown=shown)


_LINE = re.compile(rb"[^\n]*\n|[^\n]+$")
K = TypeVar("K", int, tuple[int, int])


def tail_offsets(logs: dict[K, bytes], lines: int) -> dict[K, int]:
    """Where in each log (by attempt, then worker: sortable keys) its part of the last `lines` lines of
    them all begins; in a multi-worker run each attempt's last worker is taken first. Pure."""
    starts = {number: len(data) for number, data in logs.items()}
    remaining = lines
    for number in sorted(logs, reverse=True):
        if remaining <= 0:
            break
        pieces = _LINE.findall(logs[number])
        taken = pieces[max(len(pieces) - remaining, 0) :]
        remaining -= len(taken)
        starts[number] -= sum(len(piece) for piece in taken)
    return starts
