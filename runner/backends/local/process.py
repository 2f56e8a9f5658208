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

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runner.agent.outcome import exit_code
from runner.backends import identity
from runner.backends.base import RunPlan
from runner.backends.local import envrefs, procs
from runner.backends.local.attempts import Attempt, LocalLaunch, Outcome
from runner.backends.local.gang import start_gang, worker_gpus
from runner.backends.local.supervised import SupervisedBackend, exited_outcome
from runner.backends.local.workdir import WorkDir, worker_count
from runner.config import Settings
from runner.records import RunRecord, RunRecords
from runner.workers import WorkerPlace, index_of, worker_environment

if TYPE_CHECKING:
    from runner.agent.telemetry import Telemetry

MARKER = "RUNNER_RUN_ID"
# A multi-worker run's workers all carry MARKER; each also carries WORKER_MARKER=<run id>/<index>, so
# that the end of one worker stops what it started and nothing of its fellows.
WORKER_MARKER = "RUNNER_WORKER_MARK"

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

    def __init__(self, process: subprocess.Popen[bytes], run_id: str = "", marker: str = MARKER) -> None:
        self.process = process
        self.run_id = run_id  # the marker's value: what the attempt's processes carry in their environment
        self.marker = marker

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return exit_code(code)

    def terminate(self) -> None:
        procs.signal_group(self.process.pid, signal.SIGTERM)
        if self.run_id:
            procs.signal_marked(self.marker, self.run_id, signal.SIGTERM)

    def kill(self) -> None:
        procs.kill_group(self.process.pid)
        if self.run_id:
            procs.signal_marked(self.marker, self.run_id, signal.SIGKILL)


def job_environment(
    launch: LocalLaunch,
    *,
    record: RunRecord,
    attempt: int,
    gpus: list[int],
    place: WorkerPlace | None = None,
) -> dict[str, str]:
    """The command's environment: this machine's, the manifest's env and inputs, the runner's variables;
    in a multi-worker run, the worker's place (runner.workers) and its own outputs directory."""
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
            "RUNNER_OUTPUTS": str(WorkDir(Path(record.workdir)).worker(index_of(place)).outputs),
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus)),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if place is not None:
        env.update(worker_environment(place))
        env[WORKER_MARKER] = f"{record.id}/{place.index}"
    return env


def free_ports(count: int) -> list[int]:
    """count ports on 127.0.0.1 that nothing listens on now, all different: each bound at once, then let
    go for the workers to take. Another program may take one meanwhile; the attempt then fails and a
    retry picks new ones."""
    with contextlib.ExitStack() as held:
        sockets = [
            held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)
        ]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def start_workers(
    launch: LocalLaunch,
    record: RunRecord,
    records: RunRecords,
    attempt: int,
    gpus: list[int],
    *,
    grace: float,
) -> Attempt:
    """The attempt of a multi-worker run: one process group per worker, each listening on its own free
    local port (every worker shares this machine's network), with launch.gpus of the claimed GPUs each,
    as one all-or-nothing attempt (runner.backends.local.gang)."""
    ports = free_ports(launch.workers + 1)  # one per worker, and torch.distributed's rendezvous port
    addresses = tuple(f"127.0.0.1:{port}" for port in ports[:-1])

    def start(index: int) -> Attempt:
        place = WorkerPlace(index, addresses, master_port=ports[-1])
        held = worker_gpus(gpus, launch.gpus, index)
        return start_process(launch, record, records, attempt, held, place=place)

    return start_gang(start, launch.workers, grace=grace)


def start_process(
    launch: LocalLaunch,
    record: RunRecord,
    records: RunRecords,
    attempt: int,
    gpus: list[int],
    *,
    place: WorkerPlace | None = None,
) -> Attempt:
    """The attempt's command (or, with a place, one worker's) as its own process group, logging into its
    worker's area of the work directory and running in the run's context copy."""
    context = WorkDir(Path(record.workdir)).context
    workdir = WorkDir(Path(record.workdir)).worker(index_of(place))
    workdir.logs.mkdir(parents=True, exist_ok=True)
    workdir.outputs.mkdir(parents=True, exist_ok=True)
    try:
        env = job_environment(launch, record=record, attempt=attempt, gpus=gpus, place=place)
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
                cwd=context,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            log.write(f"runner: cannot start {launch.command[0]!r}: {error.strerror}\n".encode())
            return _NotStarted()
    if place is None:
        records.update(record.id, job_pgid=process.pid, job_start=identity.start_time(process.pid))
        return ProcessAttempt(process, record.id)
    if place.chief:  # a dead supervisor's orphans are found by MARKER anyway: every worker has it
        records.update(record.id, job_pgid=process.pid, job_start=identity.start_time(process.pid))
    return ProcessAttempt(process, f"{record.id}/{place.index}", marker=WORKER_MARKER)


def _exit_of(path: Path) -> tuple[int, float, str] | None:
    """The code an exit file holds, when it was written, and its name; None without a readable one."""
    try:
        return int(path.read_text().strip()), path.stat().st_mtime, path.name
    except (OSError, ValueError):
        return None


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
            workers=spec.workers,
        )

    def check(self, plan: RunPlan, settings: Settings) -> None:
        super().check(plan, settings)
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
        if record.job_start is not None and identity.is_alive(record.job_pgid, record.job_start):
            procs.kill_group(record.job_pgid)
        procs.signal_marked(MARKER, record.id, signal.SIGKILL)

    def ended_outcome(self, record: RunRecord) -> Outcome | None:
        """The end of the last attempt, from the exit files its workers' wrappers wrote: the first failing
        worker's code, or 0 once every worker has one; None while that cannot be told."""
        number = record.attempts
        if number < 1:
            return None
        root = WorkDir(Path(record.workdir))
        ends = [
            _exit_of(root.worker(index).exit_file(number)) for index in range(worker_count(record.launch))
        ]
        known = [end for end in ends if end is not None]
        failed = sorted((end for end in known if end[0] != 0), key=lambda end: end[1])
        if not failed and len(known) < len(ends):
            return None  # a worker still runs, or was killed without its wrapper: its end is unknown
        code, ended, source = failed[0] if failed else (0, max(end[1] for end in known), known[0][2])
        started = record.started if record.started is not None else record.created
        return exited_outcome(record, number, code, started=started, ended=ended, source=source)

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
        if launch.workers > 1:
            return start_workers(launch, record, records, number, gpus, grace=settings.grace_seconds)
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
