"""Where the workers of a multi-worker run find each other, and what each of them is told.

A run with spec.workers N starts N copies of its command, worker 0 to N-1, that train together. Each
gets TF_CONFIG, so tf.distribute.MultiWorkerMirroredStrategy works unchanged; RUNNER_WORKER_INDEX and
RUNNER_WORKERS; and, for other frameworks, torch.distributed's MASTER_ADDR, MASTER_PORT, WORLD_SIZE and
RANK. Worker 0 is the chief: its outputs are the run's outputs (the model); the others' are kept under
workers/<index>/ in the run's store prefix.

The agent learns its place from two settings: RUNNER_WORKER_ADDRESSES (every worker's host:port, by
index, comma-separated) and its own index, RUNNER_WORKER_INDEX, or on Kubernetes the JOB_COMPLETION_INDEX
an Indexed Job gives each pod.

Pure and standard library only: the agent ships it into job images.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_WORKERS = 32  # spec.workers' upper bound: beyond it, one run's collective traffic is no batch job's
WORKER_PORT = 2222  # where each worker's TensorFlow server listens (in its own container or pod)
MASTER_PORT = 29500  # torch.distributed's customary rendezvous port on worker 0
ADDRESSES = "RUNNER_WORKER_ADDRESSES"
INDEX = "RUNNER_WORKER_INDEX"
COMPLETION_INDEX = "JOB_COMPLETION_INDEX"  # set by Kubernetes in every pod of an Indexed Job
WORKER_SETTINGS = (ADDRESSES, INDEX)


class WorkerSettingError(ValueError):
    """RUNNER_WORKER_ADDRESSES or the worker's index is malformed: one line for the agent to say."""


@dataclass(frozen=True)
class WorkerPlace:
    """One worker's index among the addresses ("host:port") of all of them, by index."""

    index: int
    addresses: tuple[str, ...]
    master_port: int = MASTER_PORT

    @property
    def count(self) -> int:
        return len(self.addresses)

    @property
    def chief(self) -> bool:
        return self.index == 0


def count_of(value: object) -> int | None:
    """value as a number of workers (a positive integer) when it is one, as records and documents hold it."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def index_of(place: WorkerPlace | None) -> int:
    """The worker's index; 0 for a single-worker run, whose one worker is the chief."""
    return 0 if place is None else place.index


def worker_addresses(hosts: Sequence[str], port: int = WORKER_PORT) -> tuple[str, ...]:
    """host:port of each worker, every worker on the same port (each in its own network namespace)."""
    return tuple(f"{host}:{port}" for host in hosts)


def worker_environment(place: WorkerPlace) -> dict[str, str]:
    """What a worker's command is told about the run's workers and its own place among them."""
    tf_config = {
        "cluster": {"worker": list(place.addresses)},
        "task": {"type": "worker", "index": place.index},
    }
    return {
        "TF_CONFIG": json.dumps(tf_config, separators=(",", ":")),
        INDEX: str(place.index),
        "RUNNER_WORKERS": str(place.count),
        "MASTER_ADDR": _host(place.addresses[0]),
        "MASTER_PORT": str(place.master_port),
        "WORLD_SIZE": str(place.count),
        "RANK": str(place.index),
        # Workers talk to each other directly: gRPC (TensorFlow's collectives) would otherwise send
        # their connections through an http_proxy the environment names, which cannot reach them.
        "no_grpc_proxy": ",".join(sorted({_host(address) for address in place.addresses})),
    }


def place_from_env(env: Mapping[str, str]) -> WorkerPlace | None:
    """The worker's place from its settings; None for a single-worker run (no RUNNER_WORKER_ADDRESSES)."""
    raw = env.get(ADDRESSES, "").strip()
    if not raw:
        return None
    addresses = tuple(part.strip() for part in raw.split(","))
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise WorkerSettingError(f"{ADDRESSES}: {address!r} is not host:port")
    if len(addresses) > MAX_WORKERS:
        raise WorkerSettingError(f"{ADDRESSES}: {len(addresses)} workers, at most {MAX_WORKERS}")
    name = INDEX if env.get(INDEX, "").strip() else COMPLETION_INDEX
    raw_index = env.get(name, "").strip()
    if not raw_index.isdigit() or int(raw_index) >= len(addresses):
        raise WorkerSettingError(
            f"{name}={raw_index!r} is not a worker index; use 0 to {len(addresses) - 1}"
            if raw_index
            else f"{ADDRESSES} is set but neither {INDEX} nor {COMPLETION_INDEX} says which worker this is"
        )
    return WorkerPlace(index=int(raw_index), addresses=addresses)


def worker_area(index: int) -> str:
    """Where a worker other than the chief keeps its outputs and logs, inside the run's prefix."""
    return f"workers/{index}"


def _host(address: str) -> str:
    return address.rpartition(":")[0]
