"""Container logs as a kubelet keeps them: every piece of output with the time it arrived, kept after the
container is gone (until its pod is), readable whole or followed, with kubelet's options.

Output is kept in pieces that end at a newline (the last may be a partial line), each stamped with its
arrival time: `timestamps` puts that time before every line as kubelet does (RFC 3339 with nanoseconds),
`sinceSeconds`/`sinceTime` keep the lines from that time on, `tailLines` the last n lines, `limitBytes` cuts
the answer. A follow gets what is there, then each piece as it comes, and ends when the container has.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime


def rfc3339_nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano as kubelet writes log timestamps: trailing zeros of the fraction dropped."""
    stamp = moment.astimezone(UTC)
    fraction = f"{stamp.microsecond:06d}000".rstrip("0")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


@dataclass(frozen=True)
class LogOptions:
    """The containerLogs query: follow, tailLines, sinceSeconds/sinceTime, timestamps, limitBytes."""

    follow: bool = False
    tail_lines: int | None = None
    since: datetime | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


class ContainerLog:
    """One container's output. Writers call `write` (any thread) and `close` once the container ended."""

    def __init__(self) -> None:
        self._pieces: list[tuple[datetime, bytes]] = []
        self._partial = False  # the last piece does not end with a newline
        self._ended = False
        self._changed = threading.Condition()

    def write(self, data: bytes) -> None:
        if not data:
            return
        now = datetime.now(UTC)
        with self._changed:
            for line in data.splitlines(keepends=True):
                if self._partial:
                    at, before = self._pieces[-1]
                    self._pieces[-1] = (at, before + line)
                else:
                    self._pieces.append((now, line))
                self._partial = not line.endswith(b"\n")
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def ended(self) -> bool:
        return self._ended

    def text(self) -> str:
        with self._changed:
            return b"".join(piece for _, piece in self._pieces).decode(errors="replace")

    def tail(self, lines: int, max_bytes: int) -> str:
        """The last `lines` lines, at most `max_bytes` bytes of them (FallbackToLogsOnError's message)."""
        with self._changed:
            data = b"".join(piece for _, piece in self._pieces[-lines:])
        return data[-max_bytes:].decode(errors="ignore")

    def read(self, options: LogOptions, *, stopping: threading.Event | None = None) -> Iterator[bytes]:
        """The log as the options select it; with follow, waits for more until the container ended (or
        `stopping` is set). A partial last line is sent as it is and its rest later, as kubelet does."""
        left = options.limit_bytes
        index, offset = self._first(options), 0  # the next piece, and how much of it went out
        while (fresh := self._wait(index, offset, options, stopping)) is not None:
            for position, (at, piece) in enumerate(fresh):
                body = piece[offset:] if position == 0 else piece
                stamped = options.timestamps and (position > 0 or offset == 0)
                chunk = (rfc3339_nano(at).encode() + b" " if stamped else b"") + body
                if left is not None:
                    chunk, left = chunk[:left], left - len(chunk[:left])
                if chunk:
                    yield chunk
                if left is not None and left <= 0:
                    return
            index += len(fresh) - 1
            offset = len(fresh[-1][1])
            if fresh[-1][1].endswith(b"\n"):  # else a partial line that may grow: keep its place
                index, offset = index + 1, 0

    def _first(self, options: LogOptions) -> int:
        """The first piece the options select (sinceSeconds/sinceTime, then tailLines)."""
        with self._changed:
            start = 0
            if options.since is not None:
                since = options.since
                start = next((i for i, (at, _) in enumerate(self._pieces) if at >= since), len(self._pieces))
            if options.tail_lines is not None:
                start = max(start, len(self._pieces) - options.tail_lines)
            return start

    def _wait(
        self, index: int, offset: int, options: LogOptions, stopping: threading.Event | None
    ) -> list[tuple[datetime, bytes]] | None:
        """The pieces from index on once there is something new there; None when there is nothing more
        to send (no follow, or the container ended, or the server stops)."""
        with self._changed:
            while index >= len(self._pieces) or (
                index == len(self._pieces) - 1 and offset == len(self._pieces[index][1])
            ):
                if not options.follow or self._ended or (stopping is not None and stopping.is_set()):
                    return None
                self._changed.wait(0.5)
            return self._pieces[index:]


def since_seconds(seconds: int) -> datetime:
    return datetime.fromtimestamp(time.time() - seconds, UTC)
