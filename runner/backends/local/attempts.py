"""The attempt loop of a local run: its attempts, retries, timeout, cancellation and collection.

A detached supervisor process (see supervisor.py) owns each local run. It waits for the GPUs the run
needs, starts attempts through a backend-specific factory, enforces the timeout (SIGTERM, a grace
period, SIGKILL), retries with backoff, honours cancellation, collects everything into the store and
records the outcome. Time comes from a Clock so tests can drive it without sleeping.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runner.backends.local import gpus as gpu_inventory
from runner.backends.local import strays
from runner.backends.local.policy import Ending, after_attempt
from runner.backends.local.workdir import WorkDir, worker_count
from runner.clock import Clock
from runner.config import Settings
from runner.errors import RunnerError, StoreError
from runner.records import RunRecord, RunRecords, RunState
from runner.store import Store, open_store, runjson
from runner.store.collect import RUN_FILE, collect_run, collect_worker, read_manifest, run_prefix
from runner.store.housekeeping import after_collect
from runner.store.retention import RetentionPolicy, retention_from_mapping

POLL_SECONDS = 0.2
GPU_WAIT_SECONDS = 1.0


class Attempt(Protocol):
    """One started attempt of a run."""

    note: str | None  # how it ended, where the exit code does not say (a container killed out of memory)

    def wait(self, timeout: float) -> int | None:
        """The exit code once it has ended (128+N for signal N), or None after timeout seconds."""
        ...

    def terminate(self) -> None:
        """SIGTERM to everything the attempt started."""
        ...

    def kill(self) -> None:
        """SIGKILL to everything the attempt started; harmless once it is gone."""
        ...


@dataclass(frozen=True)
class AttemptResult:
    number: int
    started: float
    finished: float
    exit_code: int
    ending: str
    log: str


@dataclass(frozen=True)
class Outcome:
    state: RunState
    exit_code: int | None
    attempts: list[AttemptResult]
    message: str

    def to_data(self, finished: float) -> dict[str, Any]:
        """The outcome as the run record keeps it until the run is collected (RunRecord.outcome)."""
        return {
            "state": self.state.value,
            "exitCode": self.exit_code,
            "attempts": [asdict(item) for item in self.attempts],
            "message": self.message,
            "finished": finished,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            RunState(data["state"]),
            data.get("exitCode"),
            [AttemptResult(**item) for item in data.get("attempts", [])],
            str(data.get("message", "")),
        )


class AttemptLoop:
    """Runs attempts until one succeeds, retries run out, the deadline passes or a stop is asked."""

    def __init__(
        self,
        start: Callable[[int], Attempt],
        *,
        max_attempts: int,
        timeout: float | None,
        grace: float,
        backoff_base: float,
        clock: Clock,
        stop_requested: Callable[[], bool],
        on_attempt: Callable[[int], None] = lambda number: None,
        on_wait: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.start = start
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.grace = grace
        self.backoff_base = backoff_base
        self.clock = clock
        self.stop_requested = stop_requested
        self.on_attempt = on_attempt
        self.on_wait = on_wait

    def run(self) -> Outcome:
        deadline = None if self.timeout is None else self.clock.monotonic() + self.timeout
        results: list[AttemptResult] = []
        number = 0
        while True:
            number += 1
            self.on_attempt(number)
            started = self.clock.time()
            attempt = self.start(number)
            code, ending = self._watch(attempt, deadline)
            results.append(
                AttemptResult(
                    number, started, self.clock.time(), code, ending.value, f"logs/attempt-{number}.log"
                )
            )
            decision = after_attempt(ending, code, number, self.max_attempts, self.backoff_base)
            if decision.state is not None:
                message = _describe(decision.state, code, number, self.timeout)
                if decision.state is RunState.FAILED and attempt.note:
                    message = f"{attempt.note}: {message}"
                return Outcome(decision.state, code, results, message)
            self.on_wait(f"attempt {number} exited with code {code}; retrying in {decision.retry_in:g}s")
            paused = self._pause(decision.retry_in, deadline)
            if paused is not None:
                state = RunState.CANCELLED if paused is Ending.CANCELLED else RunState.TIMED_OUT
                return Outcome(state, code, results, _describe(state, code, number, self.timeout))

    def _watch(self, attempt: Attempt, deadline: float | None) -> tuple[int, Ending]:
        while True:
            code = attempt.wait(POLL_SECONDS)
            if code is not None:
                attempt.kill()  # whatever the command left behind in its process group
                return code, Ending.EXITED
            if self.stop_requested():
                return self._stop(attempt), Ending.CANCELLED
            if deadline is not None and self.clock.monotonic() >= deadline:
                return self._stop(attempt), Ending.TIMED_OUT

    def _stop(self, attempt: Attempt) -> int:
        attempt.terminate()
        give_up = self.clock.monotonic() + self.grace
        while self.clock.monotonic() < give_up:
            code = attempt.wait(min(POLL_SECONDS, max(give_up - self.clock.monotonic(), 0.0)))
            if code is not None:
                attempt.kill()
                return code
        attempt.kill()
        while (code := attempt.wait(POLL_SECONDS)) is None:
            pass
        return code

    def _pause(self, seconds: float, deadline: float | None) -> Ending | None:
        until = self.clock.monotonic() + seconds
        while self.clock.monotonic() < until:
            if self.stop_requested():
                return Ending.CANCELLED
            if deadline is not None and self.clock.monotonic() >= deadline:
                return Ending.TIMED_OUT
            self.clock.sleep(min(POLL_SECONDS, until - self.clock.monotonic()))
        return None


def _describe(state: RunState, code: int | None, attempts: int, timeout: float | None) -> str:
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if state is RunState.SUCCEEDED:
        return f"succeeded{tries}"
    if state is RunState.TIMED_OUT:
        return f"stopped after its timeout of {timeout:g}s"
    if state is RunState.CANCELLED:
        return "cancelled"
    return f"exited with code {code}{tries}"


@dataclass(frozen=True)
class LocalLaunch:
    """What a local supervisor needs from the manifest, kept in the run record as plain data.

    The supervisor starts from this rather than re-validating the manifest, so it never imports
    pydantic: a run starts about a hundred milliseconds sooner.
    """

    command: list[str]
    env: dict[str, str]  # the manifest's env plus RUNNER_INPUT_<NAME> for each input
    timeout: int | None
    gpus: int
    gpu_type: str | None
    # containers only: the image, read-only input mounts (host path -> container path), limits
    image: str | None = None
    mounts: dict[str, str] = field(default_factory=dict)
    outputs_path: str = "/outputs"
    cpu_millis: int | None = None
    memory_bytes: int | None = None
    pids_limit: int | None = None  # spec.resources.pids (docker's --pids-limit)
    # the manifest's env references: name -> {"fromEnv": VAR} or {"fromFile": /path}, never a value;
    # read when each attempt starts (runner.backends.local.envrefs.resolve)
    env_from: dict[str, dict[str, str]] = field(default_factory=dict)
    image_digest: str | None = None  # containers: the image's registry digest, else its ID on the engine
    # spec.notify: {"webhook": a reference as in env_from, "on": [events]}; told by the supervisor
    notify: dict[str, Any] | None = None
    # spec.workers: copies of the command that train together (runner/workers.py); resources, GPUs
    # included, are per worker. Records made before it existed load as one worker.
    workers: int = 1

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> LocalLaunch:
        return cls(**data)


def claim_gpus(
    record: RunRecord,
    *,
    launch: LocalLaunch,
    records: RunRecords,
    clock: Clock,
    stop_requested: Callable[[], bool],
    discover: Callable[[], list[gpu_inventory.Gpu]] = gpu_inventory.discover,
) -> list[int] | None:
    """Wait until the GPUs the run asks for are free and hold them; None if a stop came first."""
    wanted = launch.gpus * launch.workers  # each worker holds its own; all are claimed at once
    if wanted == 0:
        return []
    candidates = gpu_inventory.matching(discover(), launch.gpu_type)
    while not stop_requested():
        with records.exclusive():
            holders = [other for other in records.list(active_only=True) if other.id != record.id]
            in_use = {index for other in holders for index in other.gpu_indices}
            chosen = gpu_inventory.choose(candidates, in_use, wanted)
            if chosen is not None:
                records.update(record.id, gpus=",".join(map(str, chosen)))
                return chosen
            records.update(
                record.id,
                message=f"waiting for {wanted} free GPU(s); {len(in_use)} of {len(candidates)} in use",
            )
        clock.sleep(GPU_WAIT_SECONDS)
    return None


def summary(
    record: RunRecord,
    outcome: Outcome | None,
    *,
    finished: float | None = None,
    outside: list[str] | None = None,
) -> dict[str, Any]:
    """The run.json document, schema version 2 (runner.store.runjson); outside: what the job wrote
    outside its outputs (runner.backends.local.strays)."""
    return {
        "schemaVersion": runjson.SCHEMA_VERSION,
        "id": record.id,
        "job": record.job,
        "backend": record.backend,
        "state": (outcome.state if outcome else record.state).value,
        "message": outcome.message if outcome else record.message,
        "exitCode": outcome.exit_code if outcome else record.exit_code,
        "created": runjson.rfc3339(record.created),
        "started": runjson.rfc3339(record.started),
        "finished": runjson.rfc3339(finished),
        "labels": record.labels,
        "gpus": record.gpu_indices,
        "host": socket.gethostname(),
        "attempts": [
            runjson.attempt(
                item.number,
                item.started,
                item.finished,
                exit_code=item.exit_code,
                ending=item.ending,
                log=item.log,
            )
            for item in (outcome.attempts if outcome else [])
        ],
        **_image_of(record),
        **({"outsideOutputs": outside} if outside else {}),
    }


def _image_of(record: RunRecord) -> dict[str, Any]:
    """The job image a container run used, for run.json: which image trained the model."""
    image = record.launch.get("image")
    if not isinstance(image, str) or not image:
        return {}
    digest = record.launch.get("image_digest") or record.launch.get("imageDigest")
    return {"image": {"reference": image, "digest": digest}}


def collect_and_finish(
    record: RunRecord, outcome: Outcome, records: RunRecords, settings: Settings, clock: Clock
) -> RunRecord:
    """Record the job's outcome, then collect the run into its store (failed runs too): collect_recorded."""
    record_outcome(record.id, outcome, records, finished=clock.time())
    return collect_recorded(records.get(record.id), records, clock)


def record_outcome(
    run_id: str,
    outcome: Outcome,
    records: RunRecords,
    *,
    finished: float,
    message: str = "collecting artifacts",
) -> RunRecord:
    """The job has ended: keep its outcome in the record (state collecting) before anything is collected or
    removed, so whoever collects it (this process, or another after this one died) records the same end."""
    return records.update(
        run_id,
        state=RunState.COLLECTING,
        outcome=outcome.to_data(finished),
        exit_code=outcome.exit_code,
        attempts=max(len(outcome.attempts), records.get(run_id).attempts),
        finished=finished,
        message=message,
    )


def collect_recorded(record: RunRecord, records: RunRecords, clock: Clock) -> RunRecord:
    """Collect a run whose outcome is recorded (state collecting), tidy its work directory, record the end.

    - A run already complete in the store (MANIFEST.json there: its collector died before recording the
      end) is never collected again: its run.json is the truth, and its state is adopted.
    - Otherwise everything is collected; the work directory's outputs and context are removed only once
      MANIFEST.json is written and the end is recorded.
    - When collecting fails the run is uncollected: nothing is removed, `runner collect RUN` (or a later
      command, after COLLECT_RETRY_SECONDS) tries again.

    Once collected, the job's `latest` moves to the run if it succeeded and the manifest's retention
    deletes the runs no rule keeps (runner.store.housekeeping); problems there join the message.
    """
    outcome = Outcome.from_data(record.outcome)
    finished = float(record.outcome.get("finished") or record.finished or clock.time())
    workdir = WorkDir(Path(record.workdir))
    state, exit_code, message = outcome.state, outcome.exit_code, outcome.message
    outside = strays.written_outside(workdir.root, record.created)
    if outside:
        message += "; " + strays.describe(outside, workdir.root)
    try:
        store = open_store(record.store_url)
        stored = _collected_summary(store, record)
        if stored is None:
            # the other workers first: the chief's MANIFEST.json, written last, marks the run complete
            _collect_workers(store, record, workdir)
            collect_run(
                store,
                job=record.job,
                run_id=record.id,
                manifest_text=record.manifest,
                summary=summary(record, outcome, finished=finished, outside=outside),
                logs_dir=workdir.logs,
                outputs_dir=workdir.outputs,
                workers=worker_count(record.launch),
            )
        else:
            state, exit_code, message, finished = _adopted(stored, outcome, finished)
    except Exception as error:  # the run's own result stands, and nothing is lost: say so
        return records.update(
            record.id,
            state=RunState.UNCOLLECTED,
            message=f"{outcome.message}; collecting artifacts failed: {_reason(error)}; its outputs and logs "
            f"are kept in {workdir.root}: `runner collect {record.id}` tries again",
            next_collect=clock.time() + COLLECT_RETRY_SECONDS,
        )
    message += _keep_house(store, record, state is RunState.SUCCEEDED, finished, clock)
    final = records.update(
        record.id,
        state=state,
        exit_code=exit_code,
        finished=finished,
        message=message,
        next_collect=None,
    )
    workers = [workdir.worker(index).outputs for index in range(1, worker_count(record.launch))]
    for leftover in (workdir.context, workdir.outputs, *workers):  # only now: the store holds them
        shutil.rmtree(leftover, ignore_errors=True)
    return final


def _collect_workers(store: Store, record: RunRecord, workdir: WorkDir) -> None:
    """Every worker's outputs and logs but the chief's, each under workers/<index>/ (collect_worker)."""
    for index in range(1, worker_count(record.launch)):
        area = workdir.worker(index)
        collect_worker(
            store, job=record.job, run_id=record.id, index=index, logs_dir=area.logs, outputs_dir=area.outputs
        )


# An uncollected run is tried again by the next command that notices it, at most this often.
COLLECT_RETRY_SECONDS = 60.0


def _reason(error: Exception) -> str:
    return error.message if isinstance(error, RunnerError) else str(error)


def _collected_summary(store: Store, record: RunRecord) -> dict[str, Any] | None:
    """run.json of the run when it is complete in the store (MANIFEST.json there; {} if run.json is
    unreadable); None when it is not. A damaged MANIFEST.json is not complete: collected again."""
    try:
        if read_manifest(store, record.job, record.id) is None:
            return None
    except StoreError:
        return None
    try:
        document = json.loads(store.get_bytes(f"{run_prefix(record.job, record.id)}/{RUN_FILE}"))
    except (RunnerError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _adopted(
    stored: dict[str, Any], outcome: Outcome, finished: float
) -> tuple[RunState, int | None, str, float]:
    """The end a complete run's run.json records; the recorded outcome where it says nothing usable."""
    try:
        state = RunState(str(stored.get("state")))
    except ValueError:
        state = outcome.state
    if not state.collected:
        state = outcome.state
    code = runjson.exit_code_of(stored) if "exitCode" in stored else outcome.exit_code
    message = stored.get("message")
    ended = runjson.finished_of(stored)
    return (
        state,
        code if code is not None else outcome.exit_code,
        message if isinstance(message, str) else outcome.message,
        ended if ended is not None else finished,
    )


def _keep_house(store: Store, record: RunRecord, succeeded: bool, finished: float, clock: Clock) -> str:
    """Move `latest`, apply the manifest's retention; what went wrong, as a message suffix ("" if nothing)."""
    try:
        policy, problems = retention_of(record.manifest), []
    except Exception as error:  # a manifest the runner itself resolved: not expected, never fatal
        policy, problems = None, [f"retention skipped: {error}"]
    done = after_collect(
        store,
        job=record.job,
        run_id=record.id,
        succeeded=succeeded,
        finished=finished,
        policy=policy,
        now=clock.time(),
    )
    report = "; ".join(part for part in (*problems, done.describe()) if part)
    return f"; {report}" if report else ""


def retention_of(manifest: str) -> RetentionPolicy | None:
    """spec.retention of a resolved manifest (the run record's YAML), without pydantic.

    The supervisor never imports the spec models (see LocalLaunch); the manifest was validated at
    submit, so reading its YAML is enough, and costs a few milliseconds once per run.
    """
    if "retention" not in manifest:  # most manifests: no YAML to read (the supervisor never imports it)
        return None
    import yaml

    document = yaml.safe_load(manifest)
    spec = document.get("spec") if isinstance(document, dict) else None
    retention = spec.get("retention") if isinstance(spec, dict) else None
    return None if retention is None else retention_from_mapping(retention)


LOST_MESSAGE = "lost: the runner supervising this run stopped unexpectedly (killed or machine restarted)"


def lost_outcome() -> Outcome:
    """The outcome of a run whose supervisor died while its job ran, when nothing tells the job's end."""
    return Outcome(RunState.LOST, None, [], LOST_MESSAGE)
