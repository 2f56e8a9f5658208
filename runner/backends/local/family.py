"""The local family's backends by name: runner.backends.get_backend asks here for process and docker.

The supervisor of a local run asks here too, for the backend that starts its attempts. It cannot ask
get_backend, which also knows the cluster family: the two families stand apart (an import-linter
contract). Each backend's module is imported only when it is asked for, so a process run's supervisor
never imports the docker backend (nor, through it, pydantic and the manifest model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.errors import BackendError

if TYPE_CHECKING:
    from runner.backends.local.supervised import SupervisedBackend

LOCAL_BACKENDS = ("process", "docker")


def local_backend(name: str) -> SupervisedBackend:
    """The local backend called name ('process' or 'docker')."""
    if name == "docker":
        from runner.backends.local.docker import DockerBackend

        return DockerBackend()
    if name == "process":
        from runner.backends.local.process import ProcessBackend

        return ProcessBackend()
    raise BackendError(f"{name!r} is not a backend of this machine (one of: {', '.join(LOCAL_BACKENDS)})")
