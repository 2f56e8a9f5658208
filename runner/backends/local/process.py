"""The process backend: runs a job's command as a process group on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from runner.agent.outcome import exit_code
from runner.backends.base import RunPlan
from runner.backends.local import procs
from runner.backends.local.attempts import Attempt, LocalLaunch, WorkDir
from runner.backends.local.supervised import SupervisedBackend
from runner.config import Settings
from runner.records import RunRecord, RunRecords


class ProcessAttempt:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return exit_code(code)

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


class ProcessBackend(SupervisedBackend):
    name = "process"

    def launch_details(self, plan: RunPlan) -> LocalLaunch:
        spec = plan.manifest.spec
        inputs = {item.env_name: plan.inputs[item.name] for item in spec.inputs}
        return LocalLaunch(
            command=list(spec.command),
            env={**spec.env, **inputs},
            timeout=spec.timeout,
            gpus=spec.resources.gpu,
            gpu_type=spec.resources.gpu_type,
        )

    def stop_orphans(self, record: RunRecord) -> None:
        procs.kill_group(record.job_pgid)

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
        return start_process(launch, record, records, number, gpus)
