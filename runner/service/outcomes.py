"""What a run's end means for `runner submit`'s exit code, and how an unreachable backend is said."""

from __future__ import annotations

from dataclasses import replace

from runner.errors import RunnerError
from runner.records import RunRecord, RunState

# `runner submit` exits with the job's own code; these stand for runs that never produced one.
EXIT_TIMED_OUT = 124
EXIT_CANCELLED = 130
EXIT_RUNNER_FAILURE = 1


def exit_code_of(record: RunRecord) -> int:
    if record.state in (RunState.UNCOLLECTED, RunState.COLLECTING):
        # the job's own code when it failed; never 0: its artifacts are not (yet) in the store
        try:
            ended = RunState(str(record.outcome.get("state")))
        except ValueError:
            return EXIT_RUNNER_FAILURE
        if not ended.collected:
            return EXIT_RUNNER_FAILURE
        return exit_code_of(replace(record, state=ended)) or EXIT_RUNNER_FAILURE
    if record.state is RunState.SUCCEEDED:
        return 0
    if record.state is RunState.TIMED_OUT:
        return EXIT_TIMED_OUT
    if record.state is RunState.CANCELLED:
        return EXIT_CANCELLED
    if record.state is RunState.FAILED and record.exit_code and 0 < record.exit_code < 256:
        return record.exit_code
    return EXIT_RUNNER_FAILURE


def connection_problem(error: BaseException) -> str | None:
    """What a failed connection to a remote service (an API server, a registry) was, in one line, when
    error is one of urllib3's (what the HTTP clients raise when nothing answers); None for anything else."""
    if not (type(error).__module__ or "").startswith("urllib3"):
        return None
    pool = getattr(error, "pool", None)
    where = ""
    if pool is not None:
        where = f" {getattr(pool, 'scheme', 'http')}://{pool.host}:{pool.port}"
    reason = str(getattr(error, "reason", None) or error)
    if "Failed to establish a new connection: " in reason:
        reason = reason.split("Failed to establish a new connection: ", 1)[1].rstrip("')\"")
    return f"cannot connect to{where or ' the server'}: {reason}"


def unreachable(backend: str, error: Exception) -> str:
    """A backend that could not be asked about its runs, said once: which, and why."""
    why = connection_problem(error) or (error.message if isinstance(error, RunnerError) else str(error))
    return f"the {backend} backend could not be reached ({why}); its runs are shown as last recorded"
