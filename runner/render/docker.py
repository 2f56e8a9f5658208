"""The container of one attempt of a local run under the docker backend. Pure.

``render_container`` decides everything about the container: its name, image, environment (the
manifest's, the inputs' variables and the agent's settings), labels, mounts (the run's outputs
directory read-write at the outputs path, each input read-only at its path), its log driver (`local`,
which keeps output that is not UTF-8 as its bytes), CPU, memory and pids
limits (spec.resources.pids, else DEFAULT_PIDS_LIMIT: Docker sets none, so a fork bomb in a job
would take the host's pids) and GPUs. The docker backend (runner.backends.local.docker.start_container)
only sends it:
``client.containers.run(detach=True, **config.run_arguments())``. Nothing here talks to an engine.

A multi-worker run (spec.workers > 1) has a container per worker and attempt, all on the run's own
user-defined bridge network (``render_network``, named after the run): each is reached there by its alias
``worker-<index>`` (Docker's embedded DNS), listens on WORKER_PORT in its own network namespace, and its
agent is told every worker's address and its own index (runner.workers), from which it gives the command
TF_CONFIG. A single-worker run's container stays on the engine's default bridge, as it always was; other
runs' containers are not on a run's network, so its workers' traffic is theirs alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Protocol

from runner.workers import ADDRESSES, INDEX, WORKER_PORT, WorkerPlace, worker_addresses

# spec.resources.pids when the manifest gives none. Docker sets no limit at all: one job's fork bomb
# would take every pid of the host. The limit counts threads too; a TensorFlow training process holds
# a few hundred on a large machine, data-loading workers as many again each, so 4096 leaves real jobs
# ample room and still stops a runaway one long before the host's pid_max.
DEFAULT_PIDS_LIMIT = 4096

# Docker's default log driver (json-file) stores each line as a JSON string: bytes that are not UTF-8
# come back as U+FFFD. The `local` driver stores them as they were written: the log is the record.
LOG_CONFIG: Mapping[str, Any] = MappingProxyType({"type": "local", "config": {}})

ATTEMPT_LABEL = "runner.dev/attempt"
WORKER_LABEL = "runner.dev/worker"  # a multi-worker run's containers: which worker each is
BACKEND = "docker"


class ContainerLaunch(Protocol):
    """What the container takes from the run's launch details (runner.backends.local.LocalLaunch)."""

    @property
    def image(self) -> str | None: ...
    @property
    def env(self) -> Mapping[str, str]: ...  # the manifest's env plus RUNNER_INPUT_<NAME>
    @property
    def mounts(self) -> Mapping[str, str]: ...  # host path -> container path, read-only
    @property
    def outputs_path(self) -> str: ...
    @property
    def cpu_millis(self) -> int | None: ...
    @property
    def memory_bytes(self) -> int | None: ...
    @property
    def pids_limit(self) -> int | None: ...  # spec.resources.pids; None: DEFAULT_PIDS_LIMIT


class ContainerRun(Protocol):
    """What the container takes from the run's record (runner.records.RunRecord)."""

    @property
    def id(self) -> str: ...
    @property
    def job(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class ContainerConfig:
    """One attempt's container, as the Docker SDK's ``containers.run`` takes it (run_arguments)."""

    image: str
    name: str
    environment: Mapping[str, str]
    labels: Mapping[str, str]
    volumes: Mapping[str, Mapping[str, str]]  # host path -> {"bind": container path, "mode": rw|ro}
    nano_cpus: int | None
    mem_limit: int | None
    pids_limit: int  # processes and threads in the container (docker run --pids-limit)
    gpu_ids: tuple[str, ...]  # the host's GPUs this attempt holds, by index
    network: str | None = None  # a multi-worker run's network; None: the engine's default bridge
    aliases: tuple[str, ...] = ()  # the container's names on that network

    def __post_init__(self) -> None:  # frozen all through: a config is not changed once rendered
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        volumes = {host: MappingProxyType(dict(bind)) for host, bind in self.volumes.items()}
        object.__setattr__(self, "volumes", MappingProxyType(volumes))

    def run_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``DockerClient.containers.run`` (plus detach=True, which is how the
        backend runs it). GPUs are a device request in the SDK's keywords, which it sends as given."""
        requests = [{"device_ids": list(self.gpu_ids), "capabilities": [["gpu"]]}] if self.gpu_ids else None
        return {
            "image": self.image,
            "name": self.name,
            "environment": dict(self.environment),
            "labels": dict(self.labels),
            "volumes": {host: dict(bind) for host, bind in self.volumes.items()},
            "nano_cpus": self.nano_cpus,
            "mem_limit": self.mem_limit,
            "pids_limit": self.pids_limit,
            "device_requests": requests,
            "log_config": {"type": LOG_CONFIG["type"], "config": dict(LOG_CONFIG["config"])},
            **self._network_arguments(),
        }

    def _network_arguments(self) -> dict[str, Any]:
        """The network and the container's aliases on it (an endpoint config, as the SDK sends it)."""
        if self.network is None:
            return {}
        endpoint = {"Aliases": list(self.aliases)}
        return {"network": self.network, "networking_config": {self.network: endpoint}}


@dataclass(frozen=True)
class NetworkConfig:
    """A multi-worker run's network, as the Docker SDK's ``networks.create`` takes it (create_arguments)."""

    name: str
    labels: Mapping[str, str]

    def create_arguments(self) -> dict[str, Any]:
        """A user-defined bridge: its own subnet and DNS, shared by the run's containers alone. Not
        internal: the workers reach outside as a single-worker run's container does (data downloads)."""
        return {"name": self.name, "driver": "bridge", "labels": dict(self.labels)}


def render_network(run: ContainerRun) -> NetworkConfig:
    """The network of a multi-worker run's containers: named after the run, with the run's labels (so a
    dead supervisor's network is found, as its containers are, by runner.dev/run)."""
    return NetworkConfig(name=run.id, labels=dict(run.labels))


def worker_host(index: int) -> str:
    """A worker's name on its run's network."""
    return f"worker-{index}"


def run_worker_addresses(count: int) -> tuple[str, ...]:
    """Every worker's address on the run's network, by index: worker-<i>:WORKER_PORT."""
    return worker_addresses([worker_host(index) for index in range(count)], WORKER_PORT)


def render_container(
    launch: ContainerLaunch,
    run: ContainerRun,
    *,
    attempt: int,
    gpus: Sequence[int],
    outputs_dir: str,
    grace: float,
    worker: WorkerPlace | None = None,
) -> ContainerConfig:
    """The container of attempt (1, 2, ...) of run, holding the host's GPUs gpus, with the run's
    outputs directory on the host (outputs_dir: the worker's own, for a worker) mounted at the outputs
    path; grace is the supervisor's SIGTERM-to-SIGKILL time. worker: its place in a multi-worker run,
    whose containers are on the run's network (render_network). Raises ValueError for a launch without
    an image (not prepared)."""
    if launch.image is None:
        raise ValueError(f"run {run.id} has no image to run")
    volumes: dict[str, Mapping[str, str]] = {outputs_dir: {"bind": launch.outputs_path, "mode": "rw"}}
    volumes.update({host: {"bind": inside, "mode": "ro"} for host, inside in launch.mounts.items()})
    config = ContainerConfig(
        image=launch.image,
        name=f"{run.id}-{attempt}",
        environment=container_environment(launch, run, attempt, grace),
        labels={**run.labels, ATTEMPT_LABEL: str(attempt)},
        volumes=volumes,
        nano_cpus=launch.cpu_millis * 1_000_000 if launch.cpu_millis else None,
        mem_limit=launch.memory_bytes,
        pids_limit=DEFAULT_PIDS_LIMIT if launch.pids_limit is None else launch.pids_limit,
        gpu_ids=tuple(str(index) for index in gpus),
    )
    return config if worker is None else _as_worker(config, run, worker)


def _as_worker(config: ContainerConfig, run: ContainerRun, worker: WorkerPlace) -> ContainerConfig:
    """A worker's container: named and labelled with its index, on the run's network under its alias,
    its agent told every worker's address and its own index."""
    return replace(
        config,
        name=f"{config.name}-worker-{worker.index}",
        environment={
            **config.environment,
            ADDRESSES: ",".join(worker.addresses),
            INDEX: str(worker.index),
        },
        labels={**config.labels, WORKER_LABEL: str(worker.index)},
        network=render_network(run).name,
        aliases=(worker_host(worker.index),),
    )


def container_environment(
    launch: ContainerLaunch, run: ContainerRun, attempt: int, grace: float
) -> dict[str, str]:
    """The manifest's env and the inputs' variables, then the agent's settings (runner.agent.settings)."""
    return {
        **launch.env,
        "RUNNER_STORE": "none",  # the attached supervisor collects
        "RUNNER_JOB": run.job,
        "RUNNER_RUN_ID": run.id,
        "RUNNER_ATTEMPT": str(attempt),
        "RUNNER_OUTPUTS": launch.outputs_path,
        "RUNNER_BACKEND": BACKEND,
        # the agent's own grace is shorter than the supervisor's, so it reaps before it is killed
        "RUNNER_GRACE": f"{max(grace - 1, 0.5):g}",
    }
