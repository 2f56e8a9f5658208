"""The docker backend: runs the job's image on the local Docker engine, exactly as a cluster would.

The supervisor (shared with the process backend) owns the run: it starts one container per attempt
with the runner agent as entrypoint (RUNNER_STORE=none: the attached supervisor collects), streams
the container's output into the attempt's log, stops it with SIGTERM then SIGKILL, and removes it.
The outputs path is a bind mount of the run's work directory, so collection is the same as for the
process backend. Every container carries the run's labels. When the supervisor died, the run's latest
container tells how the job ended (State.ExitCode once it exited by itself), and the collector saves each
container's whole log as its attempt's log before removing it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.backends.base import RunPlan
from runner.backends.local import envrefs
from runner.backends.local.attempts import Attempt, LocalLaunch, Outcome
from runner.backends.local.dockerengine import engine, image_digest
from runner.backends.local.dockernet import create_network, remove_run_networks
from runner.backends.local.gang import GangAttempt, start_gang, worker_gpus
from runner.backends.local.supervised import SupervisedBackend, exited_outcome
from runner.backends.local.workdir import WorkDir
from runner.config import Settings
from runner.errors import BackendError, SubmitError
from runner.records import RunRecord, RunRecords
from runner.render.docker import (
    ATTEMPT_LABEL,
    WORKER_LABEL,
    render_container,
    run_worker_addresses,
)
from runner.spec.labels import RUN_LABEL
from runner.workers import WorkerPlace, index_of

if TYPE_CHECKING:
    from runner.images.engine import InfoAhead

_LOG_DRAIN_SECONDS = 10.0
KILLED = 128 + 9  # the code of a container removed (SIGKILL) before its end was read
_CLEANUP_ENGINE_TIMEOUT = 30  # seconds per request when a dead supervisor's containers are looked at


class ContainerAttempt:
    """One attempt as a container; its output is copied into the attempt's log as it comes."""

    def __init__(self, container: Any, log: Path, memory_bytes: int | None = None) -> None:
        self.container = container
        self.log = log
        self.memory_bytes = memory_bytes
        self.note: str | None = None  # how it ended, when the exit code does not say: out of memory
        self._copier = threading.Thread(target=self._copy_logs, args=(log,), daemon=True)
        self._copier.start()

    def _copy_logs(self, log: Path) -> None:
        stream: Iterator[bytes] = self.container.logs(stream=True, follow=True)
        with log.open("ab") as sink:
            for chunk in stream:
                sink.write(chunk)
                sink.flush()

    def wait(self, timeout: float) -> int | None:
        import docker
        import requests

        try:
            result = self.container.wait(timeout=timeout)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            return None
        except docker.errors.NotFound:  # removed by kill before its end was read: it was killed
            return KILLED
        self._copier.join(_LOG_DRAIN_SECONDS)
        code = int(result.get("StatusCode", 1))
        if code != 0 and self._out_of_memory():
            limit = self.memory_bytes
            if limit is not None:
                from runner.spec.quantities import format_memory

                self.note = f"killed: out of memory (limit {format_memory(limit)})"
            else:
                self.note = "killed: out of memory"
            with contextlib.suppress(OSError), self.log.open("ab") as sink:
                sink.write(f"\nrunner: {self.note}; exit code {code}\n".encode())
        return code

    def _out_of_memory(self) -> bool:
        """Whether Docker recorded that the kernel's OOM killer ended the container (State.OOMKilled)."""
        import docker

        try:
            self.container.reload()
        except docker.errors.APIError:
            return False
        return bool((self.container.attrs.get("State") or {}).get("OOMKilled"))

    def terminate(self) -> None:
        self._signal("SIGTERM")

    def kill(self) -> None:
        """SIGKILL if still running, then remove the container: nothing of the attempt is left."""
        self._signal("SIGKILL")
        self._copier.join(_LOG_DRAIN_SECONDS)
        self._remove()

    def _signal(self, name: str) -> None:
        import docker

        with contextlib.suppress(docker.errors.APIError):  # not running any more, or already removed
            self.container.kill(signal=name)

    def _remove(self) -> None:
        import docker

        with contextlib.suppress(docker.errors.APIError):
            self.container.remove(force=True)


def start_container(
    launch: LocalLaunch,
    record: RunRecord,
    records: RunRecords,
    attempt: int,
    gpus: list[int],
    *,
    grace: float,
    worker: WorkerPlace | None = None,
) -> ContainerAttempt:
    """Start the attempt's container (a worker's, with its place) as runner.render.docker renders it;
    only the sending is here."""
    import docker

    workdir = WorkDir(Path(record.workdir)).worker(index_of(worker))
    workdir.logs.mkdir(parents=True, exist_ok=True)
    workdir.outputs.mkdir(parents=True, exist_ok=True)
    workdir.outputs.chmod(0o777)  # the image runs as a numeric non-root user
    if launch.image is None:
        raise BackendError(f"run {record.id} has no image to run")
    try:  # the manifest's env references, read now: they reach the container, never the records
        launch = replace(launch, env={**launch.env, **envrefs.resolve(launch.env_from)})
    except envrefs.UnreadableReference as problem:
        raise BackendError(f"cannot start the container of run {record.id}: {problem}") from None
    config = render_container(
        launch,
        record,
        attempt=attempt,
        gpus=gpus,
        outputs_dir=str(workdir.outputs),
        grace=grace,
        worker=worker,
    )
    client = engine()
    try:
        container = client.containers.run(detach=True, **config.run_arguments())
    except docker.errors.DockerException as error:
        raise BackendError(f"cannot start the container of run {record.id}: {error}") from error
    return ContainerAttempt(container, workdir.log(attempt), launch.memory_bytes)


def start_workers(
    launch: LocalLaunch,
    record: RunRecord,
    records: RunRecords,
    attempt: int,
    gpus: list[int],
    *,
    grace: float,
) -> GangAttempt:
    """The attempt of a multi-worker run: the run's network, then a container per worker on it, with
    launch.gpus of the claimed GPUs each, as one all-or-nothing attempt (runner.backends.local.gang).
    The network goes when the attempt ends (or cannot start), after its containers."""
    create_network(record)
    addresses = run_worker_addresses(launch.workers)

    def start(index: int) -> ContainerAttempt:
        held = worker_gpus(gpus, launch.gpus, index)
        place = WorkerPlace(index, addresses)
        return start_container(launch, record, records, attempt, held, grace=grace, worker=place)

    def remove_network() -> None:
        remove_run_networks(record.id)

    return start_gang(start, launch.workers, grace=grace, on_end=remove_network)


def run_containers(run_id: str) -> list[Any]:
    """Every container of a run, running or not, the latest attempt's first; none without an engine."""
    import docker

    try:
        client = engine(timeout=_CLEANUP_ENGINE_TIMEOUT)
        found = client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    except (BackendError, docker.errors.DockerException):
        return []
    return sorted(found, key=_attempt_of, reverse=True)


def _attempt_of(container: Any) -> int:
    return _label_number(container, ATTEMPT_LABEL)


def _worker_of(container: Any) -> int:
    return _label_number(container, WORKER_LABEL)


def _label_number(container: Any, label: str) -> int:
    number = str((container.labels or {}).get(label, ""))
    return int(number) if number.isdigit() else 0


def remove_run_containers(run_id: str, workdir: Path | None = None) -> int:
    """Remove every container of a run, running or not (stopped first), then its network; how many
    containers there were. With a work directory, each attempt's (and worker's) whole log is saved from
    its container before it goes: a supervisor that died stopped copying it."""
    import docker

    containers = run_containers(run_id)
    for container in containers:
        with contextlib.suppress(docker.errors.APIError):
            container.kill(signal="SIGKILL")
        if workdir is not None and _attempt_of(container):
            area = WorkDir(workdir).worker(_worker_of(container))
            _save_log(container, area.log(_attempt_of(container)))
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
    remove_run_networks(run_id)
    return len(containers)


def _save_log(container: Any, log: Path) -> None:
    """The container's whole output as the attempt's log, replacing the part a dead supervisor copied."""
    import docker

    if not log.parent.is_dir():
        return
    partial = log.with_name(log.name + ".saving")
    try:
        with partial.open("wb") as sink:
            for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=False):
                sink.write(chunk)
        partial.replace(log)
    except (OSError, docker.errors.DockerException):
        partial.unlink(missing_ok=True)  # the copied part stays


def container_outcome(record: RunRecord) -> Outcome | None:
    """How the job of a run whose supervisor died ended, from its latest attempt's containers' State
    (every worker's): the first failing worker's exit code, or 0 once all have exited by themselves; None
    while one runs, or when no container (or engine) is left to ask."""
    containers = run_containers(record.id)
    if not containers:
        return None
    number = _attempt_of(containers[0])
    if not number:
        return None
    ends = [_ended(container) for container in containers if _attempt_of(container) == number]
    known = [end for end in ends if end is not None]
    failed = sorted((end for end in known if end[0] != 0), key=lambda end: end[2] or 0.0)
    if not failed and (not known or len(known) < len(ends)):  # one still runs, or none can say
        return None
    code, started, ended, name, oom = failed[0] if failed else max(known, key=lambda end: end[2] or 0.0)
    note = f"killed: out of memory; exit code {code}" if oom and code else ""
    started = started or record.started or record.created
    return exited_outcome(
        record,
        number,
        code,
        started=started,
        ended=ended or started,
        source=f"its container {name}",
        note=note,
    )


def _ended(container: Any) -> tuple[int, float | None, float | None, str, bool] | None:
    """A container's exit code, start and end times, name and whether it ran out of memory, once it has
    exited by itself; None while it runs or when the engine cannot say."""
    import docker

    try:
        container.reload()
    except docker.errors.DockerException:
        return None
    state = container.attrs.get("State") or {}
    if state.get("Status") != "exited" or not isinstance(state.get("ExitCode"), int):
        return None
    started, ended = _timestamp(state.get("StartedAt")), _timestamp(state.get("FinishedAt"))
    return int(state["ExitCode"]), started, ended, str(container.name), bool(state.get("OOMKilled"))


def _timestamp(value: object) -> float | None:
    """Docker's RFC 3339 time (nanoseconds, Z) as seconds since the epoch; None for its zero time."""
    from datetime import datetime

    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


class DockerBackend(SupervisedBackend):
    name = "docker"
    copies_context = False  # the job's code is in its image

    _info_ahead: InfoAhead | None = None

    def prestart(self, settings: Settings) -> None:
        """The supervisor's interpreter, and the engine's /info asked meanwhile (check reads it)."""
        from runner.images.engine import InfoAhead

        super().prestart(settings)
        if self._info_ahead is None:
            self._info_ahead = InfoAhead()

    def release_prestart(self) -> None:
        super().release_prestart()
        self._info_ahead = None

    def check(self, plan: RunPlan, settings: Settings) -> None:
        from runner.images.engine import engine_info

        super().check(plan, settings)
        envrefs.check_references(plan.manifest.spec, self.name)
        ahead, self._info_ahead = self._info_ahead, None
        info = ahead.result() if ahead is not None else engine_info(60)
        if plan.manifest.spec.resources.gpu and "nvidia" not in (info.get("Runtimes") or {}):
            raise SubmitError(
                f"job {plan.manifest.name!r} asks for GPUs, but the Docker engine has no NVIDIA runtime",
                hint="install the NVIDIA Container Toolkit and restart the engine, or set resources.gpu: 0",
            )
        from runner.backends.local.capacity import beyond_engine

        too_much = beyond_engine(plan.manifest.spec.resources, info)
        if too_much:  # Docker would refuse the container only after the image build
            raise SubmitError(
                f"job {plan.manifest.name!r} asks for more than this machine has: " + "; ".join(too_much),
                hint="lower spec.resources, or submit to a cluster with --backend kubernetes",
            )

    def warm(self) -> None:
        with contextlib.suppress(BackendError):  # no engine now: the attempt says so when it starts
            engine()

    def prepare(self, plan: RunPlan, settings: Settings, progress: Callable[[str], None]) -> RunPlan:
        from runner.images.build import ensure_image

        plan = super().prepare(plan, settings, progress)  # s3:// inputs fetched, to be mounted

        built = ensure_image(
            plan.manifest,
            plan.context_dir,
            registry=settings.registry,
            progress=progress,
            skip=[settings.home],
        )
        progress(
            f"image {built.reference} "
            + (f"built in {built.seconds:.1f}s" if built.built else "unchanged, reused")
        )
        return replace(plan, image=built.reference)

    def launch_details(self, plan: RunPlan) -> LocalLaunch:
        spec = plan.manifest.spec
        if plan.image is None:
            raise BackendError("the docker backend launches only a prepared plan (its image is built first)")
        return LocalLaunch(
            command=list(spec.command),
            env={**spec.env_values, **{item.env_name: item.path for item in spec.inputs}},
            env_from=envrefs.launch_references(spec, self.name),
            notify=envrefs.notify_launch(spec, self.name),
            timeout=spec.timeout,
            gpus=spec.resources.gpu,
            gpu_type=spec.resources.gpu_type,
            image=plan.image,
            image_digest=image_digest(plan.image),
            mounts={plan.inputs[item.name]: item.path for item in spec.inputs},
            outputs_path=spec.outputs.path,
            cpu_millis=spec.resources.cpu,
            memory_bytes=spec.resources.memory,
            pids_limit=spec.resources.pids,
            workers=spec.workers,
        )

    def stop_orphans(self, record: RunRecord) -> None:
        remove_run_containers(record.id, Path(record.workdir))

    def ended_outcome(self, record: RunRecord) -> Outcome | None:
        """A job that ended after its supervisor died: its exit code from the container's State."""
        return container_outcome(record)

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
        return start_container(launch, record, records, number, gpus, grace=settings.grace_seconds)
