"""The process backend: runs a job's command as a process group on this machine.

Each run gets a copy of its context under RUNNER_HOME/runs/<run-id>, and a detached supervisor
(`python -m runner.backends.supervisor RUN_ID`) that outlives the command which submitted it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from runner.backends import gpus as gpu_inventory
from runner.backends import procs
from runner.backends.base import RunPlan
from runner.backends.local import Attempt, LocalLaunch, SystemClock, WorkDir, mark_lost
from runner.config import Settings
from runner.errors import BackendError, SubmitError
from runner.images.context import copy_context
from runner.records import RunRecord, RunRecords, RunState

# A supervisor that has not yet recorded itself is given this long before its run counts as lost.
_START_GRACE_SECONDS = 30.0


class ProcessAttempt:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return 128 - code if code < 0 else code

    def terminate(self) -> None:
        procs.signal_group(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        procs.kill_group(self.process.pid)


def job_environment(
    launch: LocalLaunch, *, record: RunRecord, attempt: int, gpus: list[int]
) -> dict[str, str]:
    """The command's environment: this machine's, the manifest's env and inputs, the runner's variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_")}
    # `python` in a command means the runner's own environment, as in an activated virtualenv
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    env.update(launch.env)
    env.update(
        {
            "RUNNER_RUN_ID": record.id,
            "RUNNER_JOB": record.job,
            "RUNNER_ATTEMPT": str(attempt),
            "RUNNER_OUTPUTS": str(WorkDir(Path(record.workdir)).outputs),
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus)),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_process(
    launch: LocalLaunch, record: RunRecord, records: RunRecords, attempt: int, gpus: list[int]
) -> Attempt:
    workdir = WorkDir(Path(record.workdir))
    workdir.logs.mkdir(parents=True, exist_ok=True)
    workdir.outputs.mkdir(parents=True, exist_ok=True)
    env = job_environment(launch, record=record, attempt=attempt, gpus=gpus)
    with workdir.log(attempt).open("ab") as log:
        try:
            process = subprocess.Popen(
                launch.command,
                cwd=workdir.context,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            log.write(f"runner: cannot start {launch.command[0]!r}: {error.strerror}\n".encode())
            return _NotStarted()
    records.update(record.id, job_pgid=process.pid)
    return ProcessAttempt(process)


class _NotStarted:
    """An attempt whose command could not be started: it ends at once with 127, as in a shell."""

    def wait(self, timeout: float) -> int | None:
        return 127

    def terminate(self) -> None:
        pass

    def kill(self) -> None:
        pass


def local_launch(plan: RunPlan) -> LocalLaunch:
    spec = plan.manifest.spec
    inputs = {item.env_name: plan.inputs[item.name] for item in spec.inputs}
    return LocalLaunch(
        command=list(spec.command),
        env={**spec.env, **inputs},
        timeout=spec.timeout,
        gpus=spec.resources.gpu,
        gpu_type=spec.resources.gpu_type,
    )


class ProcessBackend:
    name = "process"

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
                raise SubmitError(f"input {item.name!r}: the process backend reads local paths only")
            if not path.exists():
                raise SubmitError(
                    f"input {item.name!r}: {path} does not exist",
                    hint="create it, or point the input elsewhere with --input NAME=PATH",
                )
        if not plan.context_dir.is_dir():
            raise SubmitError(f"spec.image.context: {plan.context_dir} is not a directory")

    def launch(self, plan: RunPlan, records: RunRecords, settings: Settings) -> RunRecord:
        workdir = WorkDir(settings.work_root / plan.run_id)
        try:
            workdir.root.mkdir(parents=True)
            copy_context(plan.context_dir, workdir.context, skip=[settings.home])
        except OSError as error:
            shutil.rmtree(workdir.root, ignore_errors=True)
            raise BackendError(f"cannot copy the context {plan.context_dir}: {error}") from error
        record = RunRecord(
            id=plan.run_id,
            job=plan.manifest.name,
            backend=self.name,
            state=RunState.PENDING,
            created=SystemClock().time(),
            workdir=str(workdir.root),
            store_url=settings.store_url,
            manifest=plan.manifest_text,
            launch=local_launch(plan).to_data(),
            labels=plan.labels,
            max_attempts=plan.manifest.spec.retries + 1,
            message="starting",
        )
        records.create(record)
        with (workdir.root / "supervisor.log").open("ab") as log:
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "runner.backends.supervisor", plan.run_id],
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
        clock = SystemClock()
        if record.supervisor_pid is None and clock.time() - record.created < _START_GRACE_SECONDS:
            return record
        with records.exclusive():
            current = records.get(record.id)
            if current.state.terminal or current.supervisor_pid != record.supervisor_pid:
                return current
            current = records.update(record.id, state=RunState.LOST, message="lost; collecting what is left")
        return mark_lost(current, records, settings, clock)
