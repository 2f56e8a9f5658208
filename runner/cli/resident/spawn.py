"""Supervisors forked by the resident server for a command it runs (runner.backends.local.warmstart):
ready at once, with every module a supervisor needs imported, where a new interpreter would spend some
200 ms before it could make the run's container."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
from typing import IO

from runner.cli.resident.client import process_state, server_address
from runner.cli.resident.wire import Frames, connect, frame

EXITED = -1  # a served process is the server's child, not this one's: its exit status is the server's


class ServedProcess:
    """A process the resident server forked for this one: what the local backends use of a Popen (pid,
    stdin, poll, wait, kill). Not this process's child, so its end is watched through a pidfd."""

    def __init__(self, pid: int, pidfd: int | None, stdin: IO[bytes]) -> None:
        self._pid = pid
        self._pidfd = pidfd
        self._stdin: IO[bytes] | None = stdin
        self._code: int | None = None if pidfd is not None else EXITED

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def stdin(self) -> IO[bytes] | None:
        return self._stdin

    def poll(self) -> int | None:
        return self._waited(0.0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._waited(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"supervisor {self._pid}", timeout or 0.0)
        return code

    def kill(self) -> None:
        if self._pidfd is not None and self._code is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def _waited(self, timeout: float | None) -> int | None:
        if self._code is None and self._pidfd is not None:
            ended, _, _ = select.select([self._pidfd], [], [], timeout)
            if ended:
                os.close(self._pidfd)
                self._pidfd, self._code = None, EXITED
        return self._code


def start_supervisor(args: list[str], env: dict[str, str]) -> ServedProcess | None:
    """A supervisor (runner.backends.local.supervisor's main(args)) forked by the resident server, in a
    session of its own, with env and this process's directory, umask, limits and nice value, its stdin
    a pipe from this process and its output discarded (it opens its run's log itself); None when the
    server cannot (gone, or stale). One that cannot take on this process's limits exits at once: the
    backend then starts its supervisor as a new interpreter."""
    reading, writing = os.pipe()
    discard = os.open(os.devnull, os.O_RDWR)
    asked = {"kind": "spawn", "args": args, **process_state(env)}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            connect(sock, server_address(), os.getuid())
            socket.send_fds(sock, [frame(asked)], [reading, discard, discard])
            frames = Frames(sock)
            answer = frames.next(with_fds=1)
    except OSError:
        answer, frames = None, None
    finally:
        os.close(reading)
        os.close(discard)
    if not (isinstance(answer, tuple) and answer[0] == "pid") or frames is None:
        os.close(writing)
        for fd in frames.fds if frames else []:
            os.close(fd)
        return None
    pidfd = frames.fds[0] if frames.fds else None
    return ServedProcess(int(answer[1]), pidfd, os.fdopen(writing, "wb"))
