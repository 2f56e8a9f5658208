"""A Keras callback that writes training metrics to $RUNNER_METRICS as JSON lines (see lines.py).

    from runner.metrics.callback import RunnerMetrics
    model.fit(..., callbacks=[RunnerMetrics(every_n_batches=100)])

Each epoch's logs are appended when it ends and, with every_n_batches, every N batches' too. Outside a
run (neither RUNNER_METRICS nor RUNNER_OUTPUTS set) it writes nothing. Standard library and Keras only:
it ships in job images with the agent. A file that cannot be written is said once on stderr; training
goes on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras

from runner.metrics import training_file
from runner.metrics.lines import Line, batch_line, begin_line, epoch_line
from runner.metrics.writer import LineWriter


class RunnerMetrics(keras.callbacks.Callback):  # type: ignore[misc]  # keras ships no types
    def __init__(
        self,
        every_n_batches: int | None = None,
        path: str | Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if every_n_batches is not None and every_n_batches < 1:
            raise ValueError(f"every_n_batches must be at least 1, got {every_n_batches}")
        target = Path(path) if path is not None else training_file()
        self._writer = LineWriter(target) if target is not None else None
        self._every = every_n_batches
        self._clock = clock
        self._epoch = 1
        self._step = 0

    def _write(self, line: Line) -> None:
        if self._writer is None:
            return
        try:
            self._writer.append(line)
        except OSError as problem:
            print(f"runner metrics: cannot write {self._writer.path}: {problem.strerror}", file=sys.stderr)
            self._writer = None

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        params = self.params or {}
        epochs, steps = params.get("epochs"), params.get("steps")
        self._write(
            begin_line(
                self._clock(),
                epochs=epochs if isinstance(epochs, int) else None,
                steps=steps if isinstance(steps, int) else None,
            )
        )

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._step += 1
        if self._every is not None and (batch + 1) % self._every == 0:
            self._write(
                batch_line(self._clock(), epoch=self._epoch, batch=batch + 1, step=self._step, logs=logs)
            )

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._write(epoch_line(self._clock(), epoch + 1, logs))

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
