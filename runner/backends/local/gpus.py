"""GPUs on this machine: discovery through nvidia-smi, and the pure choice of free devices."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

_QUERY = ["nvidia-smi", "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"]


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    memory_mib: int


def parse_nvidia_smi(text: str) -> list[Gpu]:
    gpus: list[Gpu] = []
    for line in text.splitlines():
        fields = [item.strip() for item in line.split(",")]
        if len(fields) != 4 or not fields[0].isdigit():
            continue
        memory = int(fields[3]) if fields[3].isdigit() else 0
        gpus.append(Gpu(index=int(fields[0]), uuid=fields[1], name=fields[2], memory_mib=memory))
    return gpus


def discover() -> list[Gpu]:
    """The GPUs nvidia-smi reports; none when it is missing or finds no driver."""
    try:
        done = subprocess.run(_QUERY, capture_output=True, text=True, timeout=30, check=False)
    except (FileNotFoundError, PermissionError, subprocess.TimeoutExpired):
        return []
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else []


def matching(gpus: Iterable[Gpu], gpu_type: str | None) -> list[Gpu]:
    """GPUs whose product name contains gpu_type ('H100' matches 'NVIDIA H100 80GB HBM3')."""
    if gpu_type is None:
        return list(gpus)
    wanted = gpu_type.lower()
    return [gpu for gpu in gpus if wanted in gpu.name.lower()]


def choose(candidates: Iterable[Gpu], in_use: set[int], count: int) -> list[int] | None:
    """The lowest free device indices, or None when fewer than count are free."""
    free = sorted(gpu.index for gpu in candidates if gpu.index not in in_use)
    return free[:count] if len(free) >= count else None


def describe(gpus: list[Gpu]) -> str:
    if not gpus:
        return "no GPU (nvidia-smi found none)"
    names = sorted({gpu.name for gpu in gpus})
    return f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''} ({', '.join(names)})"
