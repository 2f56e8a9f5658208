"""SupervisedBackend, the base of both local backends: runs owned by a detached supervisor on this machine.

Each run gets a copy of its context under RUNNER_HOME/runs/<run-id>, a record, and a supervisor
(`python -P -m runner.backends.local.supervisor RUN_ID`) in its own session that outlives the command which
submitted it. A backend says how its attempts start (start_attempt, which the supervisor calls) and how
to stop what a dead supervisor left behind. Everything else of the Backend protocol is shared: a local run
is refreshed without a request (refresh_many refreshes one by one), every local run was launched here (adopt
finds none), and its logs are files in its work directory, then in the store (runner.backends.local.logs).

Collection is claimed in the records. Once a job has ended its outcome is recorded (state collecting) and
the process whose pid the record names as its supervisor collects it: the supervisor itself, a detached
collector (`python -P -m runner.backends.local.supervisor --collect RUN_ID`) that a command starts when it
finds the supervisor dead, or `runner collect`. A command never collects inside itself (a lost run with
100,000 files must not hold up `runner list`); a claim whose process died is taken over by the next
command, and the collection resumes: outputs leave the work directory only once the store has them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner.backends import identity
from runner.backends.base import LogChunk, RunPlan
from runner.backends.local import gpus as gpu_inventory
from runner.backends.local.attempts import (
    Attempt,
    AttemptResult,
    LocalLaunch,
    Outcome,
    collect_recorded,
    lost_outcome,
    record_outcome,
)
from runner.backends.local.logs import follow_logs, read_logs
from runner.backends.local.warmstart import StartedProcess, start_warm
from runner.backends.local.workdir import WorkDir
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings
from runner.errors import BackendError, StoreError, SubmitError, UserError
from runner.images.context import ContextEntry, copy_scanned, scan_context
from runner.records import RunRecord, RunRecords, RunState
from runner.store import FileStore, open_store

if TYPE_CHECKING:
    from runner.agent.telemetry import Telemetry

# A supervisor that has not yet recorded itself is given this long before its run counts as lost.
_START_GRACE_SECONDS = 30.0
# How long a command asking about one run (status, logs) waits for a collector it started; `list` waits not.
REFRESH_WAIT_SECONDS = 10.0
_WAIT_POLL_SECONDS = 0.05
_STORE_RECHECK_AFTER_SECONDS = 2.0  # launch probes the store again when check did so longer ago


def check_store(url: str) -> None:
    """Refuse a run whose store cannot take its artifacts, before anything of it is created: an unknown
    scheme, and for a file:// store one that cannot be written (read-only, full, a file, no permission)."""
    try:
        store = open_store(url)
    except UserError as error:
        raise SubmitError(f"RUNNER_STORE: {error.message}", hint=error.hint) from None
    if isinstance(store, FileStore):
        try:
            store.check_writable()
        except StoreError as error:
            raise SubmitError(
                f"the artifact store cannot be written, so the run's artifacts could not be kept: "
                f"{error.message}",
                hint="fix the store (space, permissions) or point RUNNER_STORE elsewhere",
            ) from None


def scanned_context(plan: RunPlan, settings: Settings) -> list[ContextEntry]:
    """What of the job's context goes into its image or its run's copy; SubmitError when it cannot
    (a FIFO or device in it, more than RUNNER_MAX_CONTEXT, unreadable). Nothing is created."""
    try:
        return scan_context(plan.context_dir, skip=[settings.home], limit=settings.max_context_bytes)
    except OSError as error:
        where = error.filename or plan.context_dir
        raise SubmitError(
            f"spec.image.context: cannot read {where}: {error.strerror or error}",
            hint="make it readable, or leave it out with .dockerignore",
        ) from None


# The supervisor starts without `site` (-S): processing site-packages' .pth files (an editable install's
# finder among them) costs a `runner submit` some 20 ms before its job can start. It is given this
# process's resolved sys.path instead, so it imports what this process would.
_BOOTSTRAP = (
    "import sys; sys.path[:0] = sys.argv.pop(1).split('\\n'); "
    "from runner.backends.local.supervisor import main; sys.exit(main(sys.argv[1:]))"
)


@contextlib.contextmanager
def cancel_deferred() -> Iterator[None]:
    """Within: processes started have SIGTERM blocked (a signal mask is inherited), so that a cancel
    sent to a supervisor still starting waits until supervise() handles it, and unblocks it."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def supervisor_command(*args: str) -> list[str]:
    """`python -P -S -c BOOTSTRAP PATHS ARGS`: runner.backends.local.supervisor's main(ARGS). -P (safe
    path) keeps the current directory off sys.path: the supervisor starts where the submitter stood, and
    a runner.py or runner/ there must never be imported in place of the installed package. PATHS are
    the package's own directory and this process's sys.path, less the current directory (-S skips the
    site processing that would find them again)."""
    import runner

    here = {"", ".", str(Path.cwd())}
    own = str(Path(runner.__file__).resolve().parent.parent)
    paths = [own, *(path for path in sys.path if path not in here and path != own and "\n" not in path)]
    return [sys.executable, "-P", "-S", "-c", _BOOTSTRAP, "\n".join(paths), *args]


def start_collector(run_id: str, settings: Settings) -> subprocess.Popen[bytes]:
    """A detached `supervisor --collect RUN_ID` in its own session; it outlives the command."""
    workdir = settings.work_root / run_id
    log_path = workdir / "supervisor.log" if workdir.is_dir() else Path(os.devnull)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            supervisor_command("--collect", run_id),
            env={**os.environ, "RUNNER_HOME": str(settings.home), "RUNNER_STORE": settings.store_url},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def exited_outcome(
    record: RunRecord, number: int, code: int, *, started: float, ended: float, source: str, note: str = ""
) -> Outcome:
    """How a run ended whose supervisor died after attempt number exited with code by itself: succeeded,
    failed (its last attempt), or lost when a retry was due. source says where the code was read."""
    attempt = AttemptResult(number, started, ended, code, "exited", f"logs/attempt-{number}.log")
    said = f"its supervisor stopped unexpectedly; the exit code is from {source}"
    if code == 0:
        return Outcome(RunState.SUCCEEDED, 0, [attempt], f"succeeded ({said})")
    if number >= record.max_attempts:
        return Outcome(RunState.FAILED, code, [attempt], f"{note or f'exited with code {code}'} ({said})")
    return Outcome(
        RunState.LOST,
        code,
        [attempt],
        f"lost: attempt {number} exited with code {code} and {said}, before it could retry",
    )


class SupervisedBackend:
    name = "supervised"
    # Whether a run works in a copy of its context (the process backend runs the command there); a
    # container backend's code is in its image, built from the context by prepare.
    copies_context = True
    _early: StartedProcess | None = None
    _store_checked: tuple[str, float] | None = None  # the store found good: its URL, and when

    def prestart(self, settings: Settings) -> None:
        """Start the next run's supervisor now, before the manifest is even read: its interpreter starts
        while the submitting command validates (some 60 ms of a trivial submit), then waits for the run
        id, which launch sends. When nothing is launched, release_prestart (or this process's end)
        closes its stdin and it exits. A command run by the resident runner has its supervisor forked
        by that instead, ready at once (warmstart)."""
        if self._early is not None:
            return
        env = {**os.environ, "RUNNER_HOME": str(settings.home), "RUNNER_STORE": settings.store_url}
        with cancel_deferred():
            self._early = start_warm(["--await", self.name], env) or subprocess.Popen(
                supervisor_command("--await", self.name),
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    def release_prestart(self) -> None:
        """Let a supervisor prestart gave no run go (it exits at the end of its stdin)."""
        early, self._early = self._early, None
        if early is None:
            return
        if early.stdin is not None:
            with contextlib.suppress(OSError):
                early.stdin.close()
        try:
            early.wait(timeout=10)
        except subprocess.TimeoutExpired:
            early.kill()
            early.wait()

    def _supervisor(self, run_id: str, settings: Settings, log: Path) -> StartedProcess:
        """The run's supervisor: the prestarted one, told its run id, else a new one."""
        early, self._early = self._early, None
        if early is not None and early.poll() is None and early.stdin is not None:
            try:
                early.stdin.write(f"{run_id}\n".encode())
                early.stdin.close()
                return early
            except OSError:  # it died meanwhile: start another
                pass
        with log.open("ab") as sink, cancel_deferred():
            return subprocess.Popen(
                supervisor_command(run_id),
                env={**os.environ, "RUNNER_HOME": str(settings.home), "RUNNER_STORE": settings.store_url},
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _check_store(self, url: str, *, unless_within: float = 0.0) -> None:
        """check_store, skipped when this backend found the store good less than unless_within seconds
        ago (its probe writes and fsyncs a file: some 35 ms of a trivial submit when done twice)."""
        now = time.monotonic()
        checked = self._store_checked
        if checked is not None and checked[0] == url and now - checked[1] < unless_within:
            return
        check_store(url)
        self._store_checked = (url, now)

    def launch_details(self, plan: RunPlan) -> LocalLaunch:
        """What the supervisor needs to start attempts, as plain data for the run record."""
        raise NotImplementedError

    def warm(self) -> None:
        """Load what starting an attempt needs, in a prestarted supervisor while it waits for its run
        (the docker SDK and a client of the engine): a submit's first line comes that much sooner."""

    def stop_orphans(self, record: RunRecord) -> None:
        """Stop whatever a run whose supervisor died left running."""
        raise NotImplementedError

    def start_attempt(
        self,
        record: RunRecord,
        number: int,
        *,
        launch: LocalLaunch,
        records: RunRecords,
        gpus: list[int],
        settings: Settings,
    ) -> Attempt:
        """Start attempt number of the run on the GPUs its supervisor holds; the supervisor watches it."""
        raise NotImplementedError

    def ended_outcome(self, record: RunRecord) -> Outcome | None:
        """How the job of a run whose supervisor died ended, when the backend can tell; None if not."""
        return None

    def telemetry(self, record: RunRecord) -> Telemetry | None:
        """What samples the run's CPU, memory and GPUs from the supervisor, while its attempts run; None
        where the agent beside the job does it (in a container)."""
        return None

    def check(self, plan: RunPlan, settings: Settings) -> None:
        resources, workers = plan.manifest.spec.resources, plan.manifest.spec.workers
        if resources.gpu:  # per worker: every worker of a run holds its own, all claimed at once
            found = gpu_inventory.discover()
            usable = gpu_inventory.matching(found, resources.gpu_type)
            if len(usable) < resources.gpu * workers:
                kind = f" {resources.gpu_type}" if resources.gpu_type else ""
                each = f" for each of its {workers} workers" if workers > 1 else ""
                raise SubmitError(
                    f"job {plan.manifest.name!r} asks for {resources.gpu}{kind} GPU(s){each}; "
                    f"this machine has {gpu_inventory.describe(found)}",
                    hint="lower spec.resources.gpu or spec.workers, or submit to a cluster with "
                    "--backend kubernetes",
                )
        from runner.backends.local.inputs import check_inputs

        check_inputs(plan, self.name)
        if not plan.context_dir.is_dir():
            raise SubmitError(f"spec.image.context: {plan.context_dir} is not a directory")
        self._check_store(settings.store_url)
        scanned_context(plan, settings)  # a FIFO or device in it, too large: refused before the record

    def prepare(self, plan: RunPlan, settings: Settings, progress: Callable[[str], None]) -> RunPlan:
        """Anything to do before launching (s3:// inputs fetched; the docker backend builds the image);
        the plan to launch."""
        from runner.backends.local.inputs import fetch_inputs

        return fetch_inputs(plan, settings.home, progress)

    def launch(self, plan: RunPlan, records: RunRecords, settings: Settings) -> RunRecord:
        # again where check came long before (a build, a wait): the store may have filled meanwhile
        self._check_store(settings.store_url, unless_within=_STORE_RECHECK_AFTER_SECONDS)
        workdir = WorkDir(settings.work_root / plan.run_id)
        limit = settings.max_context_bytes
        entries = scanned_context(plan, settings) if self.copies_context else []
        try:
            workdir.root.mkdir(parents=True)
            if self.copies_context:
                copy_scanned(plan.context_dir, entries, workdir.context, limit=limit)
        except OSError as error:
            shutil.rmtree(workdir.root, ignore_errors=True)
            raise BackendError(f"cannot copy the context {plan.context_dir}: {error}") from error
        except BaseException:
            shutil.rmtree(workdir.root, ignore_errors=True)
            raise
        record = RunRecord(
            id=plan.run_id,
            job=plan.manifest.name,
            backend=self.name,
            state=RunState.PENDING,
            created=SYSTEM_CLOCK.time(),
            workdir=str(workdir.root),
            store_url=settings.store_url,
            manifest=plan.manifest_text,
            launch=self.launch_details(plan).to_data(),
            labels=plan.labels,
            max_attempts=plan.manifest.spec.retries + 1,
            message="starting",
        )
        records.create(record)
        supervisor = self._supervisor(plan.run_id, settings, workdir.root / "supervisor.log")
        return records.update(
            plan.run_id, supervisor_pid=supervisor.pid, supervisor_start=identity.start_time(supervisor.pid)
        )

    def cancel(self, record: RunRecord, records: RunRecords, settings: Settings) -> None:
        if record.state.terminal:
            return
        if identity.is_alive(record.supervisor_pid, record.supervisor_start):
            os.kill(record.supervisor_pid or 0, signal.SIGTERM)
        else:
            self.refresh(record, records, settings)

    def refresh(
        self, record: RunRecord, records: RunRecords, settings: Settings, wait: float = REFRESH_WAIT_SECONDS
    ) -> RunRecord:
        """A run whose supervisor (or collector) died is handed to a detached collector, which stops
        what is left of its job and collects it; up to wait seconds are given to it to finish."""
        if record.state.collected or identity.is_alive(record.supervisor_pid, record.supervisor_start):
            return record
        clock = SYSTEM_CLOCK
        if record.supervisor_pid is None and clock.time() - record.created < _START_GRACE_SECONDS:
            return record
        if record.state is RunState.UNCOLLECTED and (record.next_collect or 0.0) > clock.time():
            return record
        claimed = self._claim(record, records, settings, clock, spawn=True)
        return _await_collection(claimed, records, clock, wait)

    def _claim(
        self, record: RunRecord, records: RunRecords, settings: Settings, clock: Clock, *, spawn: bool
    ) -> RunRecord:
        """Take over the collection of a run whose supervisor or collector died (or that is uncollected):
        its outcome recorded, a detached collector started (spawn) or this process as its collector."""
        with records.exclusive():
            current = records.get(record.id)
            claim = (current.state, current.supervisor_pid, current.supervisor_start)
            if claim != (record.state, record.supervisor_pid, record.supervisor_start):
                return current  # another command moved it on first
            if current.state.collected:
                return current
            if not current.state.terminal:  # the job ran under the supervisor that died
                outcome = self.ended_outcome(current) or lost_outcome()
                message = "lost; collecting what is left" if outcome.state is RunState.LOST else "collecting"
                current = record_outcome(current.id, outcome, records, finished=clock.time(), message=message)
            elif current.state is RunState.UNCOLLECTED:
                current = records.update(current.id, state=RunState.COLLECTING)
            pid = start_collector(current.id, settings).pid if spawn else os.getpid()
            return records.update(current.id, supervisor_pid=pid, supervisor_start=identity.start_time(pid))

    def collect(self, record: RunRecord, records: RunRecords, settings: Settings) -> RunRecord:
        """Collect a run whose collection failed or was cut short, in this process (`runner collect`)."""
        clock = SYSTEM_CLOCK
        if record.state.collected:
            return record
        if identity.is_alive(record.supervisor_pid, record.supervisor_start):
            if not record.state.terminal:
                raise UserError(
                    f"run {record.id} is still {record.state.value}: it is collected when it ends",
                    hint=f"runner logs -f {record.id}",
                )
            return _await_collection(record, records, clock, float("inf"))  # its collector is at it
        claimed = self._claim(record, records, settings, clock, spawn=False)
        if claimed.supervisor_pid != os.getpid():
            return _await_collection(claimed, records, clock, float("inf"))
        self.stop_orphans(claimed)
        return collect_recorded(claimed, records, clock)

    def refresh_many(
        self, runs: Sequence[RunRecord], records: RunRecords, settings: Settings
    ) -> dict[str, RunRecord]:
        """One by one: refreshing a local run asks the process table, not a server. Nothing waits for a
        collector: `runner list` shows a lost run as collecting while one works on it."""
        return {record.id: self.refresh(record, records, settings, wait=0.0) for record in runs}

    def adopt(self, records: RunRecords, namespace: str | None, settings: Settings) -> list[str]:
        """Nothing to adopt: every local run was launched on this machine, and recorded when it was."""
        return []

    def logs(
        self,
        record: RunRecord,
        *,
        follow: bool,
        attempt: int | None,
        current: Callable[[], RunRecord],
        clock: Clock,
    ) -> Iterator[LogChunk]:
        """The work directory's logs (the store's once collected). A followed run streams every attempt:
        attempt chooses one only when not following."""
        if follow:
            return follow_logs(current, clock)
        return read_logs(record, attempt)


def _await_collection(record: RunRecord, records: RunRecords, clock: Clock, wait: float) -> RunRecord:
    """The run once its collector has finished, died, or wait seconds have passed."""
    give_up = clock.monotonic() + wait
    while (
        record.state is RunState.COLLECTING
        and clock.monotonic() < give_up
        and identity.is_alive(record.supervisor_pid, record.supervisor_start)
    ):
        clock.sleep(_WAIT_POLL_SECONDS)
        record = records.get(record.id)
    return record
