"""The multi-worker MNIST: two workers train one model together under MultiWorkerMirroredStrategy.

Run here as runner's process backend would run them: two processes, each with TF_CONFIG naming both and
its own index. The workers must end with the same weights (the gradients are summed across them), the
chief writes every format, the other worker only its metrics, and the model predicts like mnist.train's.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor

import pytest

from runner.backends.local.process import free_ports
from runner.workers import WorkerPlace, worker_environment

from .conftest import JobRun, RunJob
from .formats import FORMATS, check_artifacts

pytestmark = [
    pytest.mark.tensorflow,
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow"),
]


def worker_env(addresses: list[str], index: int) -> dict[str, str]:
    """What runner gives worker `index` (runner.workers), as the process backend would."""
    return worker_environment(WorkerPlace(index=index, addresses=tuple(addresses)))


@pytest.fixture(scope="module")
def workers(run_job: RunJob) -> list[JobRun]:
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    args = ("--epochs", "3", "--max-train", "1000", "--formats", ",".join(FORMATS))
    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(run_job, "mnist.multiworker", *args, env=worker_env(addresses, index))
            for index in range(2)
        ]
        return [run.result().check() for run in runs]


def test_both_workers_train_in_sync(workers: list[JobRun]) -> None:
    for run in workers:
        assert "2 replicas train in sync" in run.stdout, run.log[-3000:]
    epochs = [[line for line in run.stdout.splitlines() if "==> epoch " in line] for run in workers]
    assert len(epochs[0]) == 3
    # The same weights on both workers: the same training metrics, epoch by epoch, to the digit.
    strip = [[line.rsplit(" (", 1)[0] for line in lines] for lines in epochs]
    assert strip[0] == strip[1]


def test_the_chief_writes_the_model_and_the_other_worker_only_its_metrics(workers: list[JobRun]) -> None:
    chief, other = workers
    assert chief.metrics["workers"] == 2 and chief.metrics["global_batch_size"] == 64
    assert sorted(path.name for path in other.outputs.iterdir()) == ["metrics.json"]
    assert other.metrics["worker"] == 1
    assert other.metrics["test"] == pytest.approx(chief.metrics["test"], abs=1e-6)


def test_the_model_predicts_like_the_single_worker_one(workers: list[JobRun]) -> None:
    chief = workers[0]
    assert chief.metrics["test"]["accuracy"] > 0.8, chief.metrics["test"]
    assert set(check_artifacts(chief.outputs, FORMATS)) == set(FORMATS)
