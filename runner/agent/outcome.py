"""Pure decisions about how a command ended: exit codes, the run's state, its message, run.json."""

from __future__ import annotations

import errno
import signal
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from runner.agent.settings import AgentSettings
from runner.store import runjson


class State(StrEnum):
    """The run states the agent can record (the same words as the runner's own records)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Ended:
    """How the command ended."""

    exit_code: int  # 128+N when killed by signal N; 126/127 when it could not start
    started: float
    finished: float
    stopped_by: int | None = None  # the first signal forwarded to it while it ran
    killed: bool = False  # SIGKILLed because it outlived the grace period
    start_error: str | None = None  # why it could not be started


def exit_code(returncode: int) -> int:
    """A Popen returncode as a shell reports it: -N (killed by signal N) becomes 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def start_failure_code(error: OSError) -> int:
    """As a shell: 127 when the command does not exist, 126 when it exists but cannot be run."""
    if isinstance(error, FileNotFoundError) or error.errno in (errno.ENOENT, errno.ENOTDIR):
        return 127
    return 126


def final_state(ended: Ended) -> State:
    """Cancelled when a forwarded signal stopped it, whatever its code; else by its exit code."""
    if ended.stopped_by is not None:
        return State.CANCELLED
    return State.SUCCEEDED if ended.exit_code == 0 else State.FAILED


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe(ended: Ended, grace: float) -> str:
    """run.json's message."""
    if ended.start_error is not None:
        return f"could not start: {ended.start_error} (exit code {ended.exit_code})"
    code = ended.exit_code
    if ended.stopped_by is not None:
        name = signal_name(ended.stopped_by)
        if ended.killed:
            return f"cancelled by {name}; killed after a grace period of {grace:g}s (exit code {code})"
        return f"cancelled by {name}; the command exited with code {code}"
    if code == 0:
        return "succeeded"
    if code > 128:
        return f"killed by {signal_name(code - 128)} (exit code {code})"
    return f"exited with code {code}"


def run_summary(settings: AgentSettings, ended: Ended, *, host: str) -> dict[str, Any]:
    """The run.json document (collect_run adds `refused`), schema version 2 (runner.store.runjson)."""
    state = final_state(ended)
    image = {"image": {"reference": settings.image, "digest": None}} if settings.image else {}
    return {
        "schemaVersion": runjson.SCHEMA_VERSION,
        "id": settings.run_id,
        "job": settings.job,
        "backend": settings.backend,
        "state": state.value,
        "message": describe(ended, settings.grace),
        "exitCode": ended.exit_code,
        "attempt": settings.attempt,
        "started": runjson.rfc3339(ended.started),
        "finished": runjson.rfc3339(ended.finished),
        "host": host,
        "attempts": [
            runjson.attempt(
                settings.attempt,
                ended.started,
                ended.finished,
                exit_code=ended.exit_code,
                ending="cancelled" if state is State.CANCELLED else "exited",
                log=f"logs/{settings.log_name}",
            )
        ],
        **image,
    }


def agent_exit_code(command_code: int, *, collected: bool) -> int:
    """The command's code; but a run whose artifacts were lost never exits 0."""
    if collected or command_code != 0:
        return command_code
    return 1
