"""Resources a job asks for beyond what the Docker engine's machine has: refused before anything is built.

Pure: the engine's `info` (NCPU, MemTotal) in, what to say out. Docker itself refuses such a container only
when it is created, after the image build, with "400 Client Error ... Range of CPUs is from 0.01 to 2.00".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.spec.model import Resources
from runner.spec.quantities import format_cpu, format_memory


def beyond_engine(resources: Resources, info: Mapping[str, Any]) -> list[str]:
    """Each of resources.cpu and memory that exceeds the engine machine's, said; [] when all fit."""
    problems = []
    cpus = info.get("NCPU")
    if resources.cpu is not None and isinstance(cpus, int) and cpus > 0 and resources.cpu > cpus * 1000:
        problems.append(
            f"spec.resources.cpu: {format_cpu(resources.cpu)} asked, this machine's Docker engine has "
            f"{cpus} CPU(s)"
        )
    memory = info.get("MemTotal")
    if resources.memory is not None and isinstance(memory, int) and 0 < memory < resources.memory:
        problems.append(
            f"spec.resources.memory: {format_memory(resources.memory)} asked, this machine's Docker engine "
            f"has {memory / 2**30:.1f}Gi"
        )
    return problems
