"""The resident server: imports the CLI's modules once, then forks a process per command that takes on
the client's terminal, directory, environment and umask and runs it as `runner` would.

It listens at the address of its user, installation and cgroups (each cgroup gets a server of its own),
serves its own user only, and declines (the client then runs the command itself) a caller in another
cgroup than its own (one moved there since it looked for its server), or one whose resource limits or
nice value it cannot take on; and every caller once any of the runner modules it imported changed on
disk: it then leaves, and the client starts a new one. It leaves after RUNNER_RESIDENT_IDLE seconds (600)
without a request too, and on `runner resident stop`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from runner.backends.local.warmstart import use_starter
from runner.cli.resident.client import DECLINED, cgroups_of, server_address
from runner.cli.resident.spawn import start_supervisor
from runner.cli.resident.wire import STDIO_FDS, Frames, cgroup_label, frame, peer

IDLE_S = 600.0
REQUEST_TIMEOUT_S = 10.0  # a caller that connects and says nothing is not waited for longer
# What the commands spend their start on: click and the command modules, pydantic and the manifest's
# models, the service, the backends, the records and the store, the docker SDK and the Kubernetes
# client. A module missing here (an extra not installed) is left out; anything else a command needs it
# imports as it would anyway.
PRELOAD = (
    "runner.cli.main",
    "runner.cli.listing",
    "runner.cli.schedule",
    "runner.spec.model",
    "runner.render.manifest",
    "runner.service.runs",
    "runner.service.plan",
    "runner.service.building",
    "runner.service.imagebuild",
    "runner.backends.local.docker",
    "runner.backends.local.process",
    "runner.backends.kubernetes.backend",
    "runner.images.build",
    "runner.images.engine",
    "runner.records",
    "runner.store",
    "runner.backends.local.supervisor",
    "runner.backends.kubernetes.client",
    "docker",
    "kubernetes",
    "http.client",
)
EXIT_INTERRUPTED = 130


def preload(modules: tuple[str, ...] = PRELOAD) -> None:
    for name in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def fingerprint() -> dict[str, int]:
    """When each runner module this process imported was last changed (nanoseconds; -1: gone)."""
    import runner

    root = str(Path(runner.__file__).parent)
    found: dict[str, int] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.startswith(root):
            found[path] = modified(path)
    return found


def modified(path: str) -> int:
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:
        return -1


def changed(known: dict[str, int]) -> bool:
    return any(modified(path) != stamp for path, stamp in known.items())


def serve(idle: float = IDLE_S, after: float = 0.0) -> int:
    """Serve until idle for idle seconds, stopped, or stale; 0 also when another server already serves.
    It imports what commands need after `after` seconds: until it listens, callers run their commands
    themselves (and their new servers leave at once, the address taken)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(server_address())
    except OSError:
        return 0  # another one serves (or is starting): it answers
    time.sleep(after)
    preload()
    if threading.active_count() > 1:  # forking a process with threads would copy their locks held
        return 1
    known = fingerprint()
    started = time.time()
    listener.listen(64)
    listener.settimeout(idle)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the commands' processes reap themselves
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            return 0
        with connection:
            connection.settimeout(REQUEST_TIMEOUT_S)
            try:
                pid, uid = peer(connection)
                if uid == os.getuid() and not answer(connection, listener, known, started, pid):
                    return 0
            except OSError:
                continue  # that caller went away (or never asked): serve the next


def answer(
    connection: socket.socket, listener: socket.socket, known: dict[str, int], started: float, asker: int
) -> bool:
    """Serve one request of process asker: a command (in a forked process) or a control request. False
    when the server is to leave: its code changed (the client runs the command itself, then starts a new
    one) or stop. A command asked from another cgroup (its client, moved since it found this address) is
    declined (the client runs it itself): its process, and the runs it starts, would be outside the
    asker's cgroup (its memory and pids limits, a systemd scope or a batch system's accounting), in this
    server's."""
    if changed(known):
        listener.close()  # before the answer: the client's new server can take the address
        with contextlib.suppress(OSError):
            connection.sendall(frame(("stale", None)))
        return False
    frames = Frames(connection)
    try:
        asked = frames.next(with_fds=len(STDIO_FDS))
        kind = asked.get("kind") if isinstance(asked, dict) else None
        if kind == "run" and cgroups_of(asker) != cgroups_of(os.getpid()):
            connection.sendall(frame((DECLINED, "another cgroup")))
            return True
        if kind in ("run", "spawn"):
            fork_for(connection, listener, asked, frames.fds)
            return True
        return not answer_control(connection, asked, started)
    finally:
        for fd in frames.fds:  # the forked process has its copies
            os.close(fd)


def fork_for(
    connection: socket.socket, listener: socket.socket, asked: dict[str, Any], fds: list[int]
) -> None:
    """Fork the process a request asks for: a command (run), which tells its client its pid and exit
    code itself, or a supervisor for a command's run (spawn), whose pid and pidfd this process sends."""
    pid = os.fork()
    if pid == 0:
        try:
            listener.close()
            if asked["kind"] == "run":
                run_in_child(connection, asked, fds)
            else:
                connection.close()
                become_supervisor(asked, fds)
        finally:
            os._exit(1)  # both exit with their own code; never the server's loop
    if asked["kind"] == "spawn":
        try:
            watch = [os.pidfd_open(pid)]
        except ProcessLookupError:  # gone already: its starter sees it ended
            watch = []
        socket.send_fds(connection, [frame(("pid", pid))], watch)
        for fd in watch:
            os.close(fd)


def answer_control(connection: socket.socket, asked: Any, started: float) -> bool:
    """Answer `runner resident status` or `stop`; True when the server is to stop."""
    kind = asked.get("kind") if isinstance(asked, dict) else None
    about = {
        "pid": os.getpid(),
        "started": started,
        "python": sys.executable,
        "cgroup": cgroup_label(cgroups_of("self") or ""),
    }
    if kind == "status":
        connection.sendall(frame(("status", about)))
    elif kind == "stop":
        with contextlib.suppress(OSError):
            connection.sendall(frame(("stopping", about)))
        return True
    return False


def run_in_child(connection: socket.socket, asked: dict[str, Any], fds: list[int]) -> None:
    """In the forked process: become the client's command, run it, report its exit code; never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    connection.settimeout(None)
    try:
        take_on(asked, fds)
    except (OSError, ValueError, KeyError, TypeError) as error:
        with contextlib.suppress(OSError):
            connection.sendall(frame((DECLINED, str(error))))  # the client runs it itself
        os._exit(1)
    connection.sendall(frame(("pid", os.getpid())))
    use_starter(start_supervisor)  # its runs' supervisors are forked by the server too, ready at once

    def report(code: int) -> None:
        with contextlib.suppress(OSError):
            connection.sendall(frame(("exit", code)))

    run_command(report)


def become_supervisor(asked: dict[str, Any], fds: list[int]) -> None:
    """In the forked process: a run's supervisor, as supervised.prestart would start it (its own session,
    SIGTERM held until it can handle it); never returns."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    code = 1
    try:
        take_on(asked, fds)
        from runner.backends.local.supervisor import main as supervisor

        code = supervisor([str(arg) for arg in asked["args"]])
    except BaseException:
        traceback.print_exc()
    flushed_exit(code)


UTF8 = ("utf-8", "strict")


def flushed_exit(code: int, report: Callable[[int], None] | None = None) -> None:
    """End a forked process with code once its output is flushed (report learns the code first); its
    files and records are closed by now, so nothing of the server's is torn down."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    if report is not None:
        report(code)
    os._exit(code)


def limited(limits: dict[str, tuple[int, int]]) -> None:
    """Each resource limit as the asker has it (RLIMIT_NOFILE: (soft, hard), ...); one this system does
    not know is left as it is."""
    import resource

    for name, (soft, hard) in limits.items():
        which = getattr(resource, str(name), None)
        if isinstance(which, int):
            resource.setrlimit(which, (int(soft), int(hard)))


def take_on(asked: dict[str, Any], fds: list[int]) -> None:
    """The asking process's fds 0, 1, 2 (as Python's own streams, in its encodings), directory, umask,
    resource limits, nice value and environment, and for a command its arguments. OSError or ValueError
    where one cannot be taken on (a limit above this process's hard one, a nice value below its own):
    the asker is then declined, and runs the command in its own process."""
    os.chdir(asked["cwd"])
    limited(asked["limits"])
    os.setpriority(os.PRIO_PROCESS, 0, int(asked["nice"]))
    if len(fds) != len(STDIO_FDS):
        raise ValueError("the request came without its standard streams")
    for target, fd in zip(STDIO_FDS, fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    stdio = asked.get("stdio") or [UTF8, UTF8, UTF8]
    (in_encoding, in_errors), (out_encoding, out_errors), (err_encoding, err_errors) = stdio
    sys.stdin = stream(0, "r", in_encoding, in_errors, line_buffered=False)
    sys.stdout = stream(1, "w", out_encoding, out_errors, line_buffered=os.isatty(1))
    sys.stderr = stream(2, "w", err_encoding, err_errors, line_buffered=True)
    os.umask(int(asked["umask"]))
    os.environ.clear()
    os.environ.update({str(key): str(value) for key, value in asked["env"].items()})
    time.tzset()
    if "argv" in asked:
        sys.argv = [str(arg) for arg in asked["argv"]]


def stream(fd: int, mode: str, encoding: str, errors: str, *, line_buffered: bool) -> TextIO:
    """A text stream on fd as Python makes its standard ones: line-buffered on a terminal (stderr always),
    in the client's encoding."""
    opened = open(fd, mode, encoding=encoding, errors=errors, closefd=False)  # noqa: SIM115
    assert isinstance(opened, io.TextIOWrapper)
    opened.reconfigure(line_buffering=line_buffered)
    return opened


def run_command(report: Callable[[int], None]) -> None:
    """`runner` with sys.argv, as the console script runs it, then report its exit code; never returns."""
    from runner.cli import main as cli

    code = 1
    try:
        cli.main(report=report)  # reports and exits, unless a thread it left must be waited for
    except SystemExit as done:
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        code = cli.exit_status(done.code)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except BaseException:
        traceback.print_exc()
    flushed_exit(code, report)


def main(argv: list[str]) -> int:
    """[--after SECONDS]: wait that long before importing (the command that started it, starting too)."""
    idle = float(os.environ.get("RUNNER_RESIDENT_IDLE") or IDLE_S)
    after = float(argv[1]) if len(argv) == 2 and argv[0] == "--after" else 0.0
    return serve(idle, after)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
