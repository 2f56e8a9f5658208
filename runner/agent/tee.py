"""Copy the command's combined output, as it arrives, to the agent's stdout and to the attempt log.

A thread reads the pipe in chunks (no line buffering: a progress bar without newlines arrives too)
and writes each chunk to the log, then to stdout, with unbuffered writes. Neither sink may stop the
job: a stdout nobody reads any more (EPIPE) or a full log disk only switches that sink off. Once
closed, the tee writes nothing more to the log, so the log can be collected while an escaped
process still holds the pipe.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

CHUNK = 64 * 1024


def write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


class Tee:
    def __init__(self, log_path: Path, stdout: int = 1) -> None:
        self.log_path = log_path
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._log: int | None = os.open(log_path, flags, 0o666)
        self._stdout: int | None = stdout
        self._log_lock = threading.Lock()
        self._out_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.log_error: str | None = None

    def start(self, source: int) -> None:
        """Pump the pipe `source` (a descriptor this tee then owns) until it ends."""
        self._thread = threading.Thread(target=self._pump, args=(source,), name="tee", daemon=True)
        self._thread.start()

    def _pump(self, source: int) -> None:
        try:
            while chunk := os.read(source, CHUNK):
                self.write(chunk)
        except OSError:
            pass  # the pipe is gone: nothing more to copy
        finally:
            os.close(source)

    def write(self, data: bytes) -> None:
        with self._log_lock:
            if self._log is not None:
                try:
                    write_all(self._log, data)
                except OSError as error:
                    self.log_error = f"cannot write {self.log_path}: {error.strerror}"
                    print(f"runner-agent: warning: {self.log_error}", file=sys.stderr, flush=True)
                    self._close_log()
        with self._out_lock:
            if (stdout := self._stdout) is not None:
                try:
                    write_all(stdout, data)
                except OSError:
                    self._stdout = None  # stdout is closed or broken: the log still gets everything

    def note(self, text: str) -> None:
        """A line from the agent itself, in order with the command's output."""
        self.write(f"runner: {text}\n".encode())

    def wait(self, timeout: float) -> bool:
        """Wait up to timeout seconds for the pipe to end; whether it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def close(self) -> None:
        """Stop writing to the log (stdout too) and close it; what arrives later is dropped."""
        with self._log_lock:
            self._close_log()
        self._stdout = None  # without the lock: a write blocked on stdout must not hold up collection

    def _close_log(self) -> None:
        if self._log is not None:
            os.close(self._log)
            self._log = None
