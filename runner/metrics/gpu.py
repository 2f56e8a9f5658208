"""The GPUs' utilisation and memory: NVML (nvidia-ml-py) where it imports, else nvidia-smi's CSV.

    nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total \
               --format=csv,noheader,nounits
    0, GPU-213ca9e0-6a1f-4b4e-9a43-1d2c3b4a5f60, NVIDIA H200, 97, 80123, 143771

Only the GPUs the run holds are kept: CUDA_VISIBLE_DEVICES (indices, as the process backend gives them,
or UUIDs) when set; in a container the engine shows it only its own. No GPU, no nvidia-smi: no samples.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any

FIELDS = ("index", "uuid", "name", "utilization.gpu", "memory.used", "memory.total")
COMMAND = ("nvidia-smi", f"--query-gpu={','.join(FIELDS)}", "--format=csv,noheader,nounits")
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class GpuSample:
    index: int
    uuid: str
    name: str
    utilization: float | None  # percent
    memoryUsed: float | None  # MiB  (camelCase: the JSON field's name)
    memoryTotal: float | None  # MiB

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


def _reading(raw: str) -> float | None:
    """A number nvidia-smi printed; None for "[N/A]", "[Not Supported]" and the like."""
    try:
        return float(raw.strip())
    except ValueError:
        return None


def parse_nvidia_smi(text: str) -> list[GpuSample]:
    """nvidia-smi's CSV (no header, no units) for FIELDS; lines that do not fit are skipped."""
    samples = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != len(FIELDS) or not parts[0].isdigit():
            continue
        index, uuid, name, utilization, used, total = parts
        samples.append(
            GpuSample(int(index), uuid, name, _reading(utilization), _reading(used), _reading(total))
        )
    return samples


def held(samples: Sequence[GpuSample], env: Mapping[str, str]) -> list[GpuSample]:
    """The samples of the GPUs CUDA_VISIBLE_DEVICES names (all of them when it is unset)."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(samples)
    wanted = {item.strip() for item in visible.split(",") if item.strip()}
    return [sample for sample in samples if str(sample.index) in wanted or sample.uuid in wanted]


Runner = Callable[..., subprocess.CompletedProcess[str]]


def query_nvidia_smi(
    run: Runner = subprocess.run, which: Callable[[str], str | None] = shutil.which
) -> list[GpuSample]:
    if which(COMMAND[0]) is None:
        return []
    try:
        done = run(list(COMMAND), capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else []


def query_nvml() -> list[GpuSample] | None:
    """The GPUs through NVML; None when nvidia-ml-py is not installed or NVML does not start."""
    try:
        import pynvml  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        samples = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            samples.append(
                GpuSample(
                    index=index,
                    uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    utilization=float(rates.gpu),
                    memoryUsed=memory.used / 2**20,
                    memoryTotal=memory.total / 2**20,
                )
            )
        return samples
    except Exception:
        return None
    finally:
        with suppress(Exception):
            pynvml.nvmlShutdown()


def read_gpus(env: Mapping[str, str]) -> list[GpuSample]:
    """The run's GPUs now: NVML, else nvidia-smi, else none."""
    samples = query_nvml()
    if samples is None:
        samples = query_nvidia_smi()
    return held(samples, env)
