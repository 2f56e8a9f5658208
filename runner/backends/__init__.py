"""Backends run jobs: process (this machine) now; docker and kubernetes plug in behind one protocol."""

from __future__ import annotations

from runner.backends.base import Backend, RunPlan
from runner.errors import UserError

__all__ = ["BACKENDS", "Backend", "RunPlan", "get_backend"]

BACKENDS = ("process",)
_PLANNED = {"docker": "the container issue", "kubernetes": "the Kubernetes issue"}


def get_backend(name: str) -> Backend:
    """The backend called name; 'auto' is the embedded default for this machine."""
    if name in ("auto", "process"):
        from runner.backends.process import ProcessBackend

        return ProcessBackend()
    if name in _PLANNED:
        raise UserError(f"backend {name!r} is not available in this version", hint="use --backend process")
    raise UserError(f"unknown backend {name!r}", hint=f"choose one of: auto, {', '.join(BACKENDS)}")
