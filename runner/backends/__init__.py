"""Backends run jobs: process and docker on this machine, kubernetes on a cluster, behind one protocol.

get_backend is how everything outside runner.backends reaches a backend: by the name a run record
carries, never by asking which backend it is. The local family names its own members
(runner.backends.local.family), which its supervisors look up there as well.
"""

from __future__ import annotations

from runner.backends.base import Backend, LogChunk, RunPlan
from runner.errors import UserError

__all__ = ["BACKENDS", "Backend", "LogChunk", "RunPlan", "auto_reason", "choose_backend", "get_backend"]

BACKENDS = ("process", "docker", "kubernetes")


def choose_backend(name: str) -> str:
    """The backend a name means here: 'auto' is docker when an engine answers, else process."""
    if name == "auto":
        from runner.backends.local.dockerengine import engine_answers

        return "docker" if engine_answers() else "process"
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}", hint=f"choose one of: auto, {', '.join(BACKENDS)}")
    return name


def auto_reason(chosen: str) -> str:
    """Why 'auto' chose the backend it did (choose_backend), for the user."""
    return "a Docker engine answers" if chosen == "docker" else "no Docker engine answers"


def get_backend(name: str) -> Backend:
    """The backend called name (a concrete one: see choose_backend for 'auto')."""
    chosen = choose_backend(name)
    if chosen == "kubernetes":
        from runner.backends.kubernetes.backend import KubernetesBackend

        return KubernetesBackend()
    from runner.backends.local.family import local_backend

    return local_backend(chosen)
