"""Backends run jobs: process and docker on this machine, kubernetes on a cluster, behind one protocol."""

from __future__ import annotations

from runner.backends.base import Backend, RunPlan
from runner.errors import UserError

__all__ = ["BACKENDS", "Backend", "RunPlan", "choose_backend", "get_backend"]

BACKENDS = ("process", "docker", "kubernetes")


def choose_backend(name: str) -> str:
    """The backend a name means here: 'auto' is docker when an engine answers, else process."""
    if name == "auto":
        from runner.backends.local.docker import engine_answers

        return "docker" if engine_answers() else "process"
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}", hint=f"choose one of: auto, {', '.join(BACKENDS)}")
    return name


def get_backend(name: str) -> Backend:
    """The backend called name (a concrete one: see choose_backend for 'auto')."""
    chosen = choose_backend(name)
    if chosen == "docker":
        from runner.backends.local.docker import DockerBackend

        return DockerBackend()
    if chosen == "kubernetes":
        from runner.backends.kubernetes.backend import KubernetesBackend

        return KubernetesBackend()
    from runner.backends.local.process import ProcessBackend

    return ProcessBackend()
