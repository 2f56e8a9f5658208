"""`runner metrics`' table output, from telemetry lines (pure)."""

from __future__ import annotations

from runner.cli.metrics import report, system_summary
from runner.metrics.lines import begin_line, epoch_line
from runner.records import RunRecord, RunState
from runner.service.metrics import Telemetry

H200_SAMPLE = {
    "time": 1.0,
    "cpu": 187.46,
    "memory": 3 * 2**30,
    "processes": 4,
    "gpus": [
        {
            "index": 0,
            "uuid": "GPU-213ca9e0-6a1f-4b4e-9a43-1d2c3b4a5f60",
            "name": "NVIDIA H200",
            "utilization": 97.0,
            "memoryUsed": 80123.0,
            "memoryTotal": 143771.0,
        }
    ],
}


def record(state: RunState) -> RunRecord:
    return RunRecord(
        id="mnist-k3x9q2",
        job="mnist",
        backend="docker",
        state=state,
        created=0.0,
        workdir="",
        store_url="",
        manifest="",
    )


def test_the_system_line_names_each_gpu_with_its_load_and_memory() -> None:
    assert system_summary(H200_SAMPLE) == "cpu 187%  memory 3.0 GiB  gpu0 NVIDIA H200 97% 78.2/140.4 GiB"
    assert system_summary({"time": 1.0, "cpu": None, "memory": 1024, "processes": 1}) == "memory 0.0 GiB"


def test_a_running_run_s_report() -> None:
    training = [begin_line(0.0, epochs=5, steps=10), epoch_line(1.0, 1, {"loss": 0.25, "accuracy": 0.9})]
    text = report(Telemetry(record(RunState.RUNNING), training, [H200_SAMPLE]))
    assert text.splitlines() == [
        "run mnist-k3x9q2 (running): epoch 1 of 5",
        "latest: loss 0.25  accuracy 0.9",
        "system: cpu 187%  memory 3.0 GiB  gpu0 NVIDIA H200 97% 78.2/140.4 GiB",
        "",
        "EPOCH   LOSS   ACCURACY",
        "1       0.25   0.9",
    ]


def test_a_run_that_has_not_trained_yet_says_so() -> None:
    text = report(Telemetry(record(RunState.PENDING), [], []))
    assert text.startswith("run mnist-k3x9q2 (pending): no epoch ended yet\nrun mnist-k3x9q2 has no training")
