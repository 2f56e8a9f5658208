"""nvidia-smi's CSV as an H200 prints it, and which GPUs are the run's."""

from __future__ import annotations

import subprocess
from typing import Any

from runner.metrics.gpu import COMMAND, GpuSample, held, parse_nvidia_smi, query_nvidia_smi

# nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total
#            --format=csv,noheader,nounits
H200 = (
    "0, GPU-213ca9e0-6a1f-4b4e-9a43-1d2c3b4a5f60, NVIDIA H200, 97, 80123, 143771\n"
    "1, GPU-7f0c1d2e-3b4a-5c6d-8e9f-0a1b2c3d4e5f, NVIDIA H200, 0, 1, 143771\n"
)


def test_the_h200_format_is_parsed() -> None:
    assert parse_nvidia_smi(H200) == [
        GpuSample(0, "GPU-213ca9e0-6a1f-4b4e-9a43-1d2c3b4a5f60", "NVIDIA H200", 97.0, 80123.0, 143771.0),
        GpuSample(1, "GPU-7f0c1d2e-3b4a-5c6d-8e9f-0a1b2c3d4e5f", "NVIDIA H200", 0.0, 1.0, 143771.0),
    ]


def test_readings_a_gpu_does_not_support_are_none_and_noise_is_skipped() -> None:
    text = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"
        "0, GPU-abc, NVIDIA A100-SXM4-80GB, [N/A], [Not Supported], 81920\n"
        "\n"
    )
    assert parse_nvidia_smi(text) == [GpuSample(0, "GPU-abc", "NVIDIA A100-SXM4-80GB", None, None, 81920.0)]


def test_only_the_gpus_the_run_holds_are_kept() -> None:
    both = parse_nvidia_smi(H200)
    assert [sample.index for sample in held(both, {"CUDA_VISIBLE_DEVICES": "1"})] == [1]
    uuid = both[0].uuid
    assert [sample.index for sample in held(both, {"CUDA_VISIBLE_DEVICES": uuid})] == [0]
    assert held(both, {"CUDA_VISIBLE_DEVICES": ""}) == []  # a run given no GPU
    assert held(both, {}) == both  # in a container: the engine shows it only its own


def test_no_nvidia_smi_means_no_gpu_lines() -> None:
    assert query_nvidia_smi(which=lambda name: None) == []


def test_nvidia_smi_is_asked_for_the_fields_and_a_failure_gives_none() -> None:
    asked: list[list[str]] = []

    def answers(code: int) -> Any:
        def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
            asked.append(command)
            return subprocess.CompletedProcess(command, code, stdout=H200, stderr="")

        return run

    assert len(query_nvidia_smi(answers(0), which=lambda name: name)) == 2
    assert asked[0] == list(COMMAND)
    assert query_nvidia_smi(answers(9), which=lambda name: name) == []
