"""SupervisedBackend, the base of both local backends: runs owned by a detached supervisor on this machine.

Each run gets a copy of its context under RUNNER_HOME/runs/<run-id>, a record, and a supervisor
(`python -m runner.backends.local.supervisor RUN_ID`) in its own session that outlives the command which
submitted it. A backend says how its attempts start (start_attempt, which the supervisor calls) and how
to stop what a dead supervisor left behind. Everything else of the Backend protocol is shared: a local run
is refreshed without a request (refresh_many refreshes one by one), every local run was launched here (adopt
finds none), and its logs are files in its work directory, then in the store (runner.backends.local.logs).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from runner.backends.base import LogChunk, RunPlan
from runner.backends.local import gpus as gpu_inventory
from runner.backends.local import procs
from runner.backends.local.attempts import Attempt, LocalLaunch, WorkDir, mark_lost
from runner.backends.local.logs import follow_logs, read_logs
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings
from runner.errors import BackendError, SubmitError
from runner.images.context import copy_context
from runner.records import RunRecord, RunRecords, RunState

# A supervisor that has not yet recorded itself is given this long before its run counts as lost.
_START_GRACE_SECONDS = 30.0


class SupervisedBackend:
    name = "supervised"
    # Whether a run works in a copy of its context (the process backend runs the command there); a
    # container backend's code is in its image, built from the context by prepare.
    copies_context = True

    def launch_details(self, plan: RunPlan) -> LocalLaunch:
        """What the supervisor needs to start attempts, as plain data for the run record."""
        raise NotImplementedError

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

    def check(self, plan: RunPlan) -> None:
        resources = plan.manifest.spec.resources
        if resources.gpu:
            found = gpu_inventory.discover()
            usable = gpu_inventory.matching(found, resources.gpu_type)
            if len(usable) < resources.gpu:
                kind = f" {resources.gpu_type}" if resources.gpu_type else ""
                raise SubmitError(
                    f"job {plan.manifest.name!r} asks for {resources.gpu}{kind} GPU(s); "
                    f"this machine has {gpu_inventory.describe(found)}",
                    hint="lower spec.resources.gpu, or submit to a cluster with --backend kubernetes",
                )
        for item in plan.manifest.spec.inputs:
            path = Path(plan.inputs[item.name])
            if not path.is_absolute():
                raise SubmitError(f"input {item.name!r}: the {self.name} backend reads local paths only")
            if not path.exists():
                raise SubmitError(
                    f"input {item.name!r}: {path} does not exist",
                    hint="create it, or point the input elsewhere with --input NAME=PATH",
                )
        if not plan.context_dir.is_dir():
            raise SubmitError(f"spec.image.context: {plan.context_dir} is not a directory")

    def prepare(self, plan: RunPlan, settings: Settings, progress: Callable[[str], None]) -> RunPlan:
        """Anything to do before launching (the docker backend builds the image); the plan to launch."""
        return plan

    def launch(self, plan: RunPlan, records: RunRecords, settings: Settings) -> RunRecord:
        workdir = WorkDir(settings.work_root / plan.run_id)
        try:
            workdir.root.mkdir(parents=True)
            if self.copies_context:
                copy_context(plan.context_dir, workdir.context, skip=[settings.home])
        except OSError as error:
            shutil.rmtree(workdir.root, ignore_errors=True)
            raise BackendError(f"cannot copy the context {plan.context_dir}: {error}") from error
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
        with (workdir.root / "supervisor.log").open("ab") as log:
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "runner.backends.local.supervisor", plan.run_id],
                env={**os.environ, "RUNNER_HOME": str(settings.home), "RUNNER_STORE": settings.store_url},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return records.update(
            plan.run_id, supervisor_pid=supervisor.pid, supervisor_start=procs.start_time(supervisor.pid)
        )

    def cancel(self, record: RunRecord, records: RunRecords, settings: Settings) -> None:
        if record.state.terminal:
            return
        if procs.is_alive(record.supervisor_pid, record.supervisor_start):
            os.kill(record.supervisor_pid or 0, signal.SIGTERM)
        else:
            self.refresh(record, records, settings)

    def refresh(self, record: RunRecord, records: RunRecords, settings: Settings) -> RunRecord:
        if record.state.terminal or procs.is_alive(record.supervisor_pid, record.supervisor_start):
            return record
        clock = SYSTEM_CLOCK
        if record.supervisor_pid is None and clock.time() - record.created < _START_GRACE_SECONDS:
            return record
        with records.exclusive():
            current = records.get(record.id)
            if current.state.terminal or current.supervisor_pid != record.supervisor_pid:
                return current
            current = records.update(record.id, state=RunState.LOST, message="lost; collecting what is left")
        self.stop_orphans(current)
        return mark_lost(current, records, settings, clock)

    def refresh_many(
        self, runs: Sequence[RunRecord], records: RunRecords, settings: Settings
    ) -> dict[str, RunRecord]:
        """One by one: refreshing a local run asks the process table, not a server."""
        return {record.id: self.refresh(record, records, settings) for record in runs}

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
