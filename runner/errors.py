"""The runner's exception tree.

Every error a user can cause or fix derives from :class:`RunnerError`. The CLI catches
``RunnerError`` at its one error boundary and prints ``message`` and ``hint`` without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class RunnerError(Exception):
    """Base of every error the runner reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


def reason_of(error: Exception) -> str:
    """What went wrong, for a message: a RunnerError's own words, else the exception's type and text."""
    return error.message if isinstance(error, RunnerError) else f"{type(error).__name__}: {error}"


class UserError(RunnerError):
    """The user's input is wrong: a bad manifest, flag or argument. Exit code 2, like a usage error."""

    exit_code = 2


class ManifestError(UserError):
    """A manifest failed to parse or validate; carries every problem found, formatted one per line."""

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        super().__init__("\n".join(problems), hint=hint)
        self.problems = problems


class SubmitError(UserError):
    """A valid manifest that cannot run where it was sent (too many GPUs, a missing input, ...)."""


class NotFoundError(RunnerError):
    """A run, job or artifact that does not exist."""


class StoreError(RunnerError):
    """The artifact store refused or failed an operation."""


class UnsafePathError(StoreError):
    """A path that would escape its run directory: '..', an absolute path or an outside symlink."""


class BackendError(RunnerError):
    """A backend could not start, watch or stop a run."""


class RecordsError(RunnerError):
    """The run records (RUNNER_HOME/runs.db) could not be read or written."""


class DiskFullError(RecordsError):
    """The disk holding RUNNER_HOME is full: nothing can be recorded until space is freed."""
