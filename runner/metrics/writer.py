"""Append JSON lines to a file, each written whole and flushed, so a reader never waits for a buffer."""

from __future__ import annotations

import os
from pathlib import Path

from runner.metrics.lines import Line, dumps


class LineWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: int | None = None

    def append(self, line: Line) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        os.write(self._file, dumps(line).encode())  # one write per line, in append mode: never interleaved

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None
