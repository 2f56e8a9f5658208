"""Run the command as its own process group, pass stop signals on to it, and kill it when it lingers.

SIGTERM, SIGINT and SIGHUP sent to the agent (Kubernetes sends SIGTERM to PID 1) are forwarded to
the command's whole process group. If the command has not exited RUNNER_GRACE seconds after the
first forwarded signal, the group is SIGKILLed. Once the command's main process has exited, the rest
of its group (background processes it left behind) is SIGKILLed too, as the local backends do.
As PID 1 of a container the agent also reaps orphaned processes re-parented to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from types import FrameType

from runner.agent.outcome import Ended, exit_code, signal_name, start_failure_code
from runner.agent.tee import Tee

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
POLL_SECONDS = 0.1


class Signals:
    """Stop signals received by the agent, queued by the handler and taken by the supervision loop."""

    def __init__(self) -> None:
        self._pending: deque[int] = deque()

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._pending.append(signum)

    def take(self) -> list[int]:
        taken: list[int] = []
        while self._pending:
            taken.append(self._pending.popleft())
        return taken


def signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def reap_orphans(child_pid: int) -> None:
    """Reap exited processes other than the command (orphans re-parented to PID 1); leave it to Popen."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid == child_pid:
            return
        with suppress(ChildProcessError):
            os.waitpid(info.si_pid, 0)


def run_command(
    command: Sequence[str],
    env: dict[str, str],
    *,
    tee: Tee,
    signals: Signals,
    grace: float,
) -> Ended:
    """Run command to its end, teeing its output; how it ended."""
    started = time.time()
    try:
        process = subprocess.Popen(
            list(command),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        reason = f"{command[0]!r}: {error.strerror}"
        tee.note(f"cannot start {reason}")
        return Ended(start_failure_code(error), started, time.time(), start_error=reason)
    assert process.stdout is not None
    tee.start(os.dup(process.stdout.fileno()))
    process.stdout.close()
    stopped_by: int | None = None
    kill_at: float | None = None
    killed = False
    reaper = os.getpid() == 1
    while (returncode := _wait(process)) is None:
        for signum in signals.take():
            tee.note(f"received {signal_name(signum)}; passing it on to the command")
            signal_group(process.pid, signum)
            if stopped_by is None:
                stopped_by, kill_at = signum, time.monotonic() + grace
        if stopped_by is not None and kill_at is not None and not killed and time.monotonic() >= kill_at:
            tee.note(f"the command did not exit within {grace:g}s of {signal_name(stopped_by)}; killing it")
            signal_group(process.pid, signal.SIGKILL)
            killed = True
        if reaper:
            reap_orphans(process.pid)
    signal_group(process.pid, signal.SIGKILL)  # whatever it left running in its group
    return Ended(exit_code(returncode), started, time.time(), stopped_by=stopped_by, killed=killed)


def _wait(process: subprocess.Popen[bytes]) -> int | None:
    try:
        return process.wait(POLL_SECONDS)
    except subprocess.TimeoutExpired:
        return None
