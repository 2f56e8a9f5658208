"""The process backend: runs a job's command as a process group on this machine.

Each attempt's command runs under a tiny wrapper (EXIT_WRAPPER, the runner's interpreter in isolated
mode, standard library only) that writes its exit code to attempt-N.exit in the work directory when it
ends. The supervisor is the wrapper's parent and reads the code as usual; when the supervisor has died,
the next command reads the file and records the job's real end instead of `lost`.

A job's processes are its process group, plus whatever left the group (setsid, a daemon's double fork):
every process of the job carries RUNNER_RUN_ID=<run id> in its environment, and stopping an attempt
(its end, a timeout, a cancel, a lost run's clean-up) signals the group and then every process so
marked (runner.backends.local.procs.marked_processes). This machine's cgroups (v1, not delegated to
users) are not used: the environment scan needs no privileges. A process that clears its environment
escapes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runner.agent.outcome import exit_code
from runner.backends.base import RunPlan
from runner.backends.local import envrefs, procs
from runner.backends.local.attempts import Attempt, AttemptResult, LocalLaunch, Outcome, WorkDir
from runner.backends.local.supervised import SupervisedBackend
from runner.config import Settings
from runner.records import RunRecord, RunRecords, RunState

if TYPE_CHECKING:
    from runner.agent.telemetry import Telemetry

MARKER = "RUNNER_RUN_ID"

# argv: EXIT_FILE COMMAND... ; the command's exit code as a shell gives it (128+N for signal N), also
# written to EXIT_FILE. Signals that stop the group reach the command; the wrapper waits on for its end.
EXIT_WRAPPER = """\
import os, signal, sys
path, argv = sys.argv[1], sys.argv[2:]
stop = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
for number in stop:
    signal.signal(number, lambda *_: None)
reset = {*stop, signal.SIGPIPE, signal.SIGXFSZ}
try:
    pid = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=reset)
except OSError as error:
    sys.stderr.write(f"runner: cannot start {argv[0]!r}: {error.strerror}\\n")
    sys.stderr.flush()
    os._exit(127)
while True:
    try:
        status = os.waitpid(pid, 0)[1]
        break
    except InterruptedError:
        continue
code = os.waitstatus_to_exitcode(status)
code = 128 - code if code < 0 else code
try:
    with open(path + ".part", "w") as out:
        out.write(f"{code}\\n")
    os.replace(path + ".part", path)
except OSError:
    pass
os._exit(code)
"""


class ProcessAttempt:
    note: str | None = None  # a process's exit code says how it ended

    def __init__(self, process: subprocess.Popen[bytes], run_id: str = "") -> None:
        self.process = process
        self.run_id = run_id

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return exit_code(code)

    def terminate(self) -> None:
        procs.signal_group(self.process.pid, signal.SIGTERM)
        if self.run_id:
            procs.signal_marked(MARKER, self.run_id, signal.SIGTERM)

    def kill(self) -> None:
        procs.kill_group(self.process.pid)
        if self.run_id:
            procs.signal_marked(MARKER, self.run_id, signal.SIGKILL)


def job_environment(
    launch: LocalLaunch, *, record: RunRecord, attempt: int, gpus: list[int]
) -> dict[str, str]:
    """The command's environment: this machine's, the manifest's env and inputs, the runner's variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_")}
    # `python` in a command means the runner's own environment, as in an activated virtualenv
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    env.update(launch.env)
    env.update(envrefs.resolve(launch.env_from))  # read now, kept nowhere but in the job's environment
    env.update(
        {
            MARKER: record.id,
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
    try:
        env = job_environment(launch, record=record, attempt=attempt, gpus=gpus)
    except envrefs.UnreadableReference as problem:  # a variable unset or a file gone since submit
        with workdir.log(attempt).open("ab") as log:
            log.write(f"runner: cannot start the attempt: {problem}\n".encode())
        return _NotStarted()
    workdir.exit_file(attempt).unlink(missing_ok=True)
    wrapper = [sys.executable, "-I", "-S", "-c", EXIT_WRAPPER, str(workdir.exit_file(attempt))]
    with workdir.log(attempt).open("ab") as log:
        try:
            process = subprocess.Popen(
                [*wrapper, *launch.command],
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
    records.update(record.id, job_pgid=process.pid, job_start=procs.start_time(process.pid))
    return ProcessAttempt(process, record.id)


class _NotStarted:
    """An attempt whose command could not be started: it ends at once with 127, as in a shell."""

    note: str | None = None  # the attempt's log says why

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
            env={**spec.env_values, **inputs},
            env_from=envrefs.launch_references(spec, self.name),
            notify=envrefs.notify_launch(spec, self.name),
            timeout=spec.timeout,
            gpus=spec.resources.gpu,
            gpu_type=spec.resources.gpu_type,
        )

    def check(self, plan: RunPlan) -> None:
        super().check(plan)
        envrefs.check_references(plan.manifest.spec, self.name)

    def prepare(self, plan: RunPlan, settings: Settings, progress: Callable[[str], None]) -> RunPlan:
        """Say what this backend does not enforce: memory and CPU limits (this machine's cgroups are
        v1 and not delegated to users; RLIMIT_AS would count CUDA's and TensorFlow's address-space
        reservations, not memory, and kill healthy jobs). The container backends enforce both."""
        from runner.spec.quantities import format_cpu, format_memory

        resources = plan.manifest.spec.resources
        limits = [
            f"{name} ({shown})"
            for name, shown in (
                ("memory", None if resources.memory is None else format_memory(resources.memory)),
                ("cpu", None if resources.cpu is None else format_cpu(resources.cpu)),
            )
            if shown is not None
        ]
        if limits:
            progress(
                f"warning: the process backend does not enforce spec.resources {' and '.join(limits)}: "
                "the job may use all of this machine's; --backend docker enforces them"
            )
        from runner.backends.local.requirements import not_installed_warning

        uninstalled = not_installed_warning(plan.manifest.spec.image, plan.context_dir)
        if uninstalled:
            progress(f"warning: {uninstalled}")
        return super().prepare(plan, settings, progress)

    def stop_orphans(self, record: RunRecord) -> None:
        """SIGKILL the job's process group, only while its leader is the process recorded (pids are
        reused: another group may hold that number now), then every process marked with the run's id."""
        if record.job_start is not None and procs.is_alive(record.job_pgid, record.job_start):
            procs.kill_group(record.job_pgid)
        procs.signal_marked(MARKER, record.id, signal.SIGKILL)

    def ended_outcome(self, record: RunRecord) -> Outcome | None:
        """The end of the last attempt, from the exit file its wrapper wrote; None while it has none."""
        number = record.attempts
        if number < 1:
            return None
        path = WorkDir(Path(record.workdir)).exit_file(number)
        try:
            code = int(path.read_text().strip())
            ended = path.stat().st_mtime
        except (OSError, ValueError):
            return None
        started = record.started if record.started is not None else record.created
        attempt = AttemptResult(number, started, ended, code, "exited", f"logs/attempt-{number}.log")
        note = f"its supervisor stopped unexpectedly; the exit code is from {path.name}"
        if code == 0:
            return Outcome(RunState.SUCCEEDED, 0, [attempt], f"succeeded ({note})")
        if number >= record.max_attempts:
            return Outcome(RunState.FAILED, code, [attempt], f"exited with code {code} ({note})")
        return Outcome(
            RunState.LOST,
            code,
            [attempt],
            f"lost: attempt {number} exited with code {code} and {note}, before it could retry",
        )

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

    def telemetry(self, record: RunRecord) -> Telemetry | None:
        """The job's processes are the supervisor's children: it samples them as the agent would its own,
        into the work directory's outputs (collected with them). No live uploads: the work directory is
        where `runner metrics` reads a local run while it goes on."""
        from runner.agent.settings import metrics_interval
        from runner.agent.telemetry import telemetry_for

        interval = metrics_interval(os.environ)
        if interval <= 0:
            return None
        outputs = WorkDir(Path(record.workdir)).outputs
        return telemetry_for(
            outputs=outputs, job=record.job, run_id=record.id, store=None, interval=interval, env=os.environ
        )
