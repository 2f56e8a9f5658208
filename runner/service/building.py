"""A run exists from the moment of submit: its record is `building` while the image is made (and pushed,
and its inputs uploaded), then the backend's launch takes it over. A build that fails is a failed run
whose build log is in the store, at <job>/<run>/logs/build.log, for `runner logs` to print. `runner submit
-d` returns as soon as the record is there: a detached builder process
builds and launches (runner.service.builder), and `runner cancel` stops it.

The builder process is the record's supervisor_pid: when it is gone and the record still says building,
the build was killed, and the run is failed for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from runner.backends import Backend, LogChunk, RunPlan
from runner.backends.identity import is_alive, start_time
from runner.clock import Clock
from runner.config import Settings
from runner.errors import RunnerError, reason_of
from runner.records import RunRecord, RunRecords, RunState
from runner.store import open_store
from runner.store.collect import run_prefix

BUILD_LOG = "logs/build.log"
BUILDING_MESSAGE = "building its image"
FAILED_BUILD = "build"  # launch["failed"] of a run whose build (prepare) failed: its log is BUILD_LOG
CANCELLED_MESSAGE = "cancelled while building its image"
FOLLOW_POLL_SECONDS = 0.5
CANCEL_POLL_SECONDS = 0.1
CANCEL_WAIT_SECONDS = 30.0


def build_log_key(record: RunRecord) -> str:
    return f"{run_prefix(record.job, record.id)}/{BUILD_LOG}"


def local_build_log(settings: Settings, run_id: str) -> Path:
    """Where a build's progress is written on this machine (a detached builder's whole output)."""
    return settings.home / "builds" / f"{run_id}.log"


@dataclass(frozen=True)
class Builds:
    """The building runs of this machine's records."""

    records: RunRecords
    settings: Settings
    clock: Clock

    def begin(self, plan: RunPlan, backend: str) -> RunRecord:
        """The run's record, building, its builder this process."""
        pid = os.getpid()
        record = RunRecord(
            id=plan.run_id,
            job=plan.manifest.name,
            backend=backend,
            state=RunState.BUILDING,
            created=self.clock.time(),
            workdir="",
            store_url=self.settings.store_url,
            manifest=plan.manifest_text,
            labels=plan.labels,
            message=BUILDING_MESSAGE,
            max_attempts=plan.manifest.spec.retries + 1,
            supervisor_pid=pid,
            supervisor_start=start_time(pid),
        )
        self.records.create(record)
        return record

    def build_and_launch(
        self, record: RunRecord, plan: RunPlan, backend: Backend, progress: Callable[[str], None]
    ) -> RunRecord:
        """Prepare (build) and launch a building run. A failure before the launch took the record over
        fails the run, its build log stored; Ctrl-C or SIGTERM while building cancels it, and one during
        the launch cancels the launched run through its backend once the launch is done. Both are
        raised again."""
        said: list[str] = []

        def tee(line: str) -> None:
            said.append(line)
            progress(line)

        built = False
        launched: RunRecord | None = None
        try:
            with _TerminateInterrupts() as terminate:
                plan = backend.prepare(plan, self.settings, tee)
                built = True
                with terminate.deferred():
                    launched = backend.launch(plan, self.records, self.settings)
            return launched
        except KeyboardInterrupt:
            if launched is None:
                self._end(record, RunState.CANCELLED, CANCELLED_MESSAGE, [*said, CANCELLED_MESSAGE])
            else:  # cancelled mid-launch: the launch is whole now, and its backend stops the run
                backend.cancel(self.records.get(launched.id), self.records, self.settings)
            raise
        except Exception as error:
            what = "its launch failed" if built else "its build failed"
            reason = reason_of(error)
            hint = getattr(error, "hint", None)
            said += [f"{what}: {reason}", *([f"hint: {hint}"] if hint else [])]
            self._end(record, RunState.FAILED, f"{what}: {reason.splitlines()[0]}", said)
            if not built:
                progress(f"run {record.id} failed: {what} (runner logs {record.id} prints its build log)")
            raise

    def _end(self, record: RunRecord, state: RunState, message: str, log: list[str]) -> None:
        """End a run that is still building (a launch that went wrong part way has its own record by
        now) with message: its build log (what the build said, ending with why, in full) into the store
        first; when the store cannot take it, the message says so and keeps its last lines."""
        current = self.records.find(record.id)
        if current is None or current.state is not RunState.BUILDING:
            return
        text = "\n".join([*log, ""]).encode()
        try:
            open_store(record.store_url).put_bytes(build_log_key(record), text)
        except RunnerError as error:
            ended = " / ".join(log[-3:])
            message += f" (its build log could not be stored: {error.message}; it ended: {ended})"
        with self.records.exclusive():
            current = self.records.find(record.id)
            if current is not None and current.state is RunState.BUILDING:
                self.records.update(
                    record.id,
                    state=state,
                    message=message,
                    finished=self.clock.time(),
                    launch={"failed": FAILED_BUILD},
                    supervisor_pid=None,  # its builder has nothing more to do for it
                    supervisor_start=None,
                )

    def refresh(self, record: RunRecord) -> RunRecord:
        """A building run whose builder is gone (killed: it ends the run itself otherwise) has failed."""
        if record.state is not RunState.BUILDING or is_alive(record.supervisor_pid, record.supervisor_start):
            return record
        gone = f"its build stopped: the process building it ({record.supervisor_pid}) is gone"
        self._end(record, RunState.FAILED, gone, [gone])
        return self.records.get(record.id)

    def cancel(self, record: RunRecord, *, wait: bool) -> RunRecord:
        """Stop a building run's builder (SIGTERM: it cancels the run; mid-launch, it finishes the
        launch, then cancels the launched run through its backend) and, with wait, wait for the builder
        to be gone (pip and the image build stopped, a launch whole): the run as it is then."""
        pid, started = record.supervisor_pid, record.supervisor_start
        if pid is not None and is_alive(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        give_up = self.clock.monotonic() + CANCEL_WAIT_SECONDS
        while wait and is_alive(pid, started) and self.clock.monotonic() < give_up:
            self.clock.sleep(CANCEL_POLL_SECONDS)
        current = self.records.get(record.id)
        if current.state is RunState.BUILDING and not is_alive(pid, started):
            self._end(current, RunState.CANCELLED, CANCELLED_MESSAGE, [CANCELLED_MESSAGE])
            current = self.records.get(record.id)
        return current

    def detach(self, plan: RunPlan, backend: str, context: str | None) -> RunRecord:
        """Record the run as building and leave its build and launch to a builder process of its own
        (whose output is local_build_log); the record names the builder, so cancel can stop it."""
        log = local_build_log(self.settings, plan.run_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        request = log.with_suffix(".json")
        request.write_text(json.dumps(_request(plan, backend, context)))
        record = self.begin(plan, backend)
        with log.open("ab") as output:
            builder = subprocess.Popen(
                [sys.executable, "-P", "-m", "runner.service.builder", str(request)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of the shell that ran submit -d does not reach it
                env={**os.environ, "RUNNER_HOME": str(self.settings.home)},
            )
        # the builder records itself too: whichever comes first, the run never names this process after
        return self.records.update(
            record.id, supervisor_pid=builder.pid, supervisor_start=start_time(builder.pid)
        )


def ended_building(record: RunRecord) -> bool:
    """The run ended before its launch (its build failed, was cancelled or killed): it has a build log
    in the store and nothing else."""
    return record.launch.get("failed") == FAILED_BUILD


def logs(
    record: RunRecord,
    *,
    follow: bool,
    current: Callable[[], RunRecord],
    clock: Clock,
    launched: Callable[[RunRecord], Iterator[LogChunk]],
) -> Iterator[LogChunk]:
    """The logs of a run that is building or whose build failed: its stored build log (as attempt 0),
    once it has failed; followed, the wait for the build, then the launched run's own logs."""
    while follow and record.state is RunState.BUILDING:
        clock.sleep(FOLLOW_POLL_SECONDS)
        record = current()
    if ended_building(record):
        with contextlib.suppress(RunnerError):
            yield LogChunk(attempt=0, data=open_store(record.store_url).get_bytes(build_log_key(record)))
    elif record.state is not RunState.BUILDING:
        yield from launched(record)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (`runner cancel`) while building: handled as Ctrl-C."""


class _TerminateInterrupts:
    """SIGTERM interrupts the build like Ctrl-C. Within deferred() (the launch) it only marks itself, and
    interrupts once the launch is done: a launch is never cut between creating an object and recording
    it, and the canceller then finds a launched run to cancel."""

    def __init__(self) -> None:
        self.defer = False
        self.pending = False
        self.previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.defer:
            self.pending = True
            return
        raise _Terminated

    def __enter__(self) -> _TerminateInterrupts:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.defer = True
        try:
            yield
        finally:
            self.defer = False
        if self.pending:
            raise _Terminated


# ---------------------------------------------------------------------------------------------------
# the detached builder of `runner submit -d`


def _request(plan: RunPlan, backend: str, context: str | None) -> dict[str, Any]:
    fields = asdict(plan)
    fields.pop("manifest")  # the resolved manifest_text says it all
    fields["context_dir"] = str(plan.context_dir)
    return {"backend": backend, "context": context, "plan": fields, "manifest_path": "job.yaml"}


def plan_of(request: dict[str, Any]) -> RunPlan:
    from runner.spec.loader import parse_manifest

    fields = dict(request["plan"])
    manifest, _ = parse_manifest(fields["manifest_text"], request["manifest_path"])
    fields["context_dir"] = Path(fields["context_dir"])
    return RunPlan(manifest=manifest, **fields)
