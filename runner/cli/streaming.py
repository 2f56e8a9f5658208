"""A run's logs and its end, written to the terminal: stdout for the job's own lines, stderr for runner's."""

from __future__ import annotations

import codecs
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

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
    """Writes a run's logs to stdout as they come, each line prefixed with the run id when asked. It
    remembers how much of each attempt it wrote, so a second pass (the drain after a cancel) writes
    only what came since."""

    def __init__(self, run_id: str, *, prefix: bool) -> None:
        label = click.style(f"[{run_id}] ", fg="cyan") if sys.stdout.isatty() else f"[{run_id}] "
        self.label = label.encode() if prefix else b""
        self.written: dict[int, int] = {}
        self.attempt = 1
        self.pending = b""
        self.said = ""
        # a terminal is shown text: bytes that are not UTF-8 as \xNN escapes (a pipe gets the bytes)
        self.decoders: dict[int, codecs.IncrementalDecoder] | None = {} if sys.stdout.isatty() else None

    def note(self, record: RunRecord) -> None:
        """Say a retry's backoff (the run's message while it waits) in the stream, once."""
        message = record.message
        if message != self.said and "retrying in" in message:
            self.said = message
            self.flush()
            click.echo(message, err=True)

    def write(self, attempt: int, data: bytes, offset: int) -> None:
        done, end = self.written.get(attempt, 0), offset + len(data)
        if end <= done:
            return  # written by an earlier pass
        data = data[max(done - offset, 0) :]
        self.written[attempt] = end
        if self.decoders is not None:
            decoder = self.decoders.setdefault(
                attempt, codecs.getincrementaldecoder("utf-8")("backslashreplace")
            )
            data = decoder.decode(data).encode()
        out = sys.stdout.buffer
        if attempt != self.attempt:
            self.attempt = attempt
            self.flush()
            click.echo(f"--- attempt {attempt} ---", err=True)
        if not self.label:
            out.write(data)
            out.flush()
            return
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            out.write(self.label + line + b"\n")
        out.flush()

    def flush(self) -> None:
        if self.pending:
            sys.stdout.buffer.write(self.label + self.pending + b"\n")
            sys.stdout.buffer.flush()
            self.pending = b""

    def stream(
        self,
        runs: RunService,
        record: RunRecord,
        *,
        follow: bool,
        attempt: int | None,
        shown: Callable[[int], bool] = lambda attempt: True,
    ) -> None:
        """shown: whether an attempt's log is wanted at all (--since)."""
        offsets: dict[int, int] = {}
        try:
            for chunk in runs.logs_of(record, follow=follow, attempt=attempt, on_record=self.note):
                if not shown(chunk.attempt):
                    continue
                offset = offsets.get(chunk.attempt, 0)
                offsets[chunk.attempt] = offset + len(chunk.data)
                self.write(chunk.attempt, chunk.data, offset)
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
) -> None:
    """Write a run's logs to stdout as they come (see LogPrinter): only the last `tail` lines of what
    is there already, and only attempts that ran within the last `since` seconds, when given."""
    record = runs.get(reference)
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
        logs: dict[int, bytes] = {}
        for chunk in runs.logs_of(record, follow=False, attempt=attempt):
            if shown(chunk.attempt):
                logs[chunk.attempt] = logs.get(chunk.attempt, b"") + chunk.data
        printer.written.update(tail_offsets(logs, tail))  # what comes before is taken as written
    printer.stream(runs, record, follow=follow, attempt=attempt, shown=shown)


_LINE = re.compile(rb"[^\n]*\n|[^\n]+$")


def tail_offsets(logs: dict[int, bytes], lines: int) -> dict[int, int]:
    """Where in each attempt's log its part of the last `lines` lines of them all begins. Pure."""
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
