"""The seam between the simulated kubelet and whatever runs a pod's container.

The kubelet (kubelet.py) owns pod status; a runtime only runs containers and reports through a
`PodSink`. Two runtimes exist: real Docker containers for end-to-end tests (docker_runtime.py)
and simulated durations for scale runs (scale.py).
"""

from __future__ import annotations

from typing import Any, Protocol

Obj = dict[str, Any]


class PodSink(Protocol):
    """How a runtime reports on one pod. Calls may come from any thread, in this order: started (once),
    log (any number of times), then exactly one of exited or failed_to_start."""

    def started(self) -> None:
        """The container is running."""

    def log(self, text: str) -> None:
        """More of the container's combined stdout and stderr, in order."""

    def exited(self, exit_code: int, *, oom_killed: bool = False) -> None:
        """The container ended; oom_killed when the kernel killed it for memory (exit code 137)."""

    def failed_to_start(self, reason: str, message: str) -> None:
        """The container never ran: ErrImagePull, CreateContainerConfigError, ... (kubelet waiting
        reasons)."""


class PodRuntime(Protocol):
    def start(self, pod: Obj, node: str, sink: PodSink) -> None:
        """Start the pod's (single) container on `node` and return promptly; report through `sink`."""

    def kill(self, pod_uid: str, grace_seconds: float) -> None:
        """Stop a pod's container (SIGTERM, SIGKILL after the grace period). Idempotent; the sink still
        gets its exited() unless the pod had already ended."""

    def close(self) -> None:
        """Stop every container this runtime started and release what it holds."""
