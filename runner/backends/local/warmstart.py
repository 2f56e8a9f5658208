"""Supervisors started warm: by a process that has runner's modules imported already (the resident
runner, runner.cli.resident), which forks one ready at once, where a new interpreter spends some 200 ms
importing them, the docker SDK among them, before the run's container can be made.

A command that runs in a resident runner's process is given a starter (use_starter); anywhere else
there is none and supervisors start as new interpreters (supervised.supervisor_command).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Protocol


class StartedProcess(Protocol):
    """What the local backends use of a supervisor they started: subprocess.Popen's part of it."""

    @property
    def pid(self) -> int: ...

    @property
    def stdin(self) -> IO[bytes] | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


# The supervisor's arguments (runner.backends.local.supervisor's main) and environment: a supervisor
# reading its stdin from the process's stdin, or None when it cannot be started warm.
Starter = Callable[[list[str], dict[str, str]], StartedProcess | None]

_starter: Starter | None = None


def use_starter(starter: Starter | None) -> None:
    global _starter  # noqa: PLW0603 - one per process: set once by the resident runner's command process
    _starter = starter


def start_warm(args: list[str], env: dict[str, str]) -> StartedProcess | None:
    """A supervisor started by this process's starter; None when it has none or it could not."""
    return _starter(args, env) if _starter is not None else None
