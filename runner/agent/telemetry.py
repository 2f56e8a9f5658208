"""The run's telemetry while it goes on: RUNNER_METRICS for the command, system samples, live uploads.

The command is told to write its training metrics to <outputs>/telemetry/training.jsonl (RUNNER_METRICS);
the agent samples its CPU, memory and GPUs every RUNNER_METRICS_INTERVAL seconds into
<outputs>/telemetry/system.jsonl and, when it collects into a store, uploads both files to the run's
outputs there each time, so `runner metrics` and `runner ui` see a cluster run grow. Collection copies
them again at the end, into MANIFEST.json with everything else. Problems are warnings, said once: the
run never waits or fails for its telemetry. A file is uploaded whole, so a big one is uploaded less often:
at most UPLOAD_BYTES per interval on average (a week of samples is megabytes, not sent every 5 s).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from runner.metrics import METRICS_VARIABLE, SYSTEM_PATH, TRAINING_PATH
from runner.metrics.system import SystemSampler
from runner.metrics.writer import LineWriter
from runner.store import Store
from runner.store.collect import run_prefix

UPLOAD_BYTES = 256 * 1024


class Telemetry:
    def __init__(
        self,
        *,
        outputs: Path,
        job: str,
        run_id: str,
        store: Store | None,
        interval: float,
        sampler: SystemSampler,
        clock: Callable[[], float] = time.time,
        warn: Callable[[str], None] = lambda message: print(
            f"runner-agent: warning: {message}", file=sys.stderr, flush=True
        ),
    ) -> None:
        self.training = outputs / TRAINING_PATH
        self.system = outputs / SYSTEM_PATH
        self._prefix = f"{run_prefix(job, run_id)}/outputs"
        self._store, self._interval, self._sampler = store, interval, sampler
        self._clock, self._warn = clock, warn
        self._writer = LineWriter(self.system)
        self._uploaded: dict[Path, tuple[int, float]] = {}  # size and time of the last upload
        self._said: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def environment(self) -> dict[str, str]:
        """What the command's environment gets: where to write its metrics."""
        return {METRICS_VARIABLE: str(self.training)}

    def tick(self) -> None:
        """One sample, then the files to the store where they changed."""
        try:
            self._writer.append(self._sampler.sample(self._clock()))
        except OSError as problem:
            self._once("sample", f"cannot write {self.system}: {problem.strerror}")
        self.upload()

    def upload(self, *, final: bool = False) -> None:
        """Each file that changed since its last upload and is due (final: every one that changed)."""
        if self._store is None:
            return
        now = self._clock()
        for path, key in ((self.training, TRAINING_PATH), (self.system, SYSTEM_PATH)):
            try:
                data = path.read_bytes()
            except OSError:
                continue  # not written (yet)
            size, when = self._uploaded.get(path, (-1, float("-inf")))
            due = when + self._interval * max(1.0, len(data) / UPLOAD_BYTES) * 0.999
            if size == len(data) or (not final and now < due):
                continue
            try:
                self._store.put_bytes(f"{self._prefix}/{key}", data)
            except Exception as problem:  # a store that is down now may answer at the next tick
                self._once("upload", f"cannot upload the run's live metrics: {problem}")
                continue
            self._uploaded[path] = (len(data), now)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="runner-telemetry", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.tick()

    def stop(self) -> None:
        """The last upload, once the command has ended (a sample now would see none of its processes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 10)
        self._writer.close()
        self.upload(final=True)

    def _once(self, what: str, message: str) -> None:
        if what not in self._said:
            self._said.add(what)
            self._warn(message)


def telemetry_for(
    *, outputs: Path, job: str, run_id: str, store: Store | None, interval: float, env: Mapping[str, str]
) -> Telemetry:
    """The telemetry of the command the agent runs: every process below the agent is the run's."""
    return Telemetry(
        outputs=outputs,
        job=job,
        run_id=run_id,
        store=store,
        interval=interval,
        sampler=SystemSampler(os.getpid(), env),
    )
