"""The resident client: hands a command to the resident server, with this process's terminal, and
stands in for it (signals forwarded, its exit code returned). Imports little: it is what every command
costs when a resident server answers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from types import FrameType

from runner.cli.resident.wire import (
    STDIO_FDS,
    Frames,
    NotOurs,
    address,
    connect,
    family,
    frame,
    listening,
)

# What a terminal or a supervisor sends the command. Ctrl-Z (SIGTSTP) stops the command, then this
# client, as a job of the shell; the shell's fg or bg (SIGCONT) resumes both.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH)
EXIT_LOST = 1  # the command's process ended without saying how (killed): a failure, as for any crash


def server_address() -> str:
    """The address of the resident server for this user, installation and this process's cgroups;
    RUNNER_RESIDENT_ADDRESS names other servers (an abstract socket name's start), for servers side by
    side (the tests' own)."""
    named = os.environ.get("RUNNER_RESIDENT_ADDRESS")
    return address(os.getuid(), sys.executable, sys.path[1:], cgroups_of("self") or "", named)


def server_addresses() -> list[str]:
    """The addresses of every resident server of this user and installation (one per cgroup it was
    started from) that listens now."""
    named = os.environ.get("RUNNER_RESIDENT_ADDRESS")
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as sockets:  # noqa: PTH123 - as below
            said = sockets.read()
    except OSError:
        return []
    return listening(said, family(os.getuid(), sys.executable, sys.path[1:], named))


def cgroups_of(pid: int | str) -> str | None:
    """The cgroups process pid ("self": this one) is in, every hierarchy's as /proc says them; None
    where unreadable."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as cgroups:  # noqa: PTH123 - pathlib is a tenth of what the client imports
            return cgroups.read()
    except OSError:
        return None


DECLINED = "declined"


def forward(args: list[str], at: str | None = None) -> int | str | None:
    """The exit code of args run by the resident server (this process's, or the one at address at); None
    when there is none to run it (or it runs older code), DECLINED when it serves but not this caller
    (another cgroup, a resource limit above its own): the caller runs the command itself either way."""
    handed = hand_over(args, at or server_address())
    if not isinstance(handed, tuple):
        return handed
    sock, frames, pid = handed
    relayed: list[int] = []

    def relay(signum: int, _frame: FrameType | None) -> None:
        relayed.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # this process stops here, until continued
        signal.signal(signal.SIGTSTP, stop)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)

    previous = {signum: signal.signal(signum, relay) for signum in FORWARDED}
    previous[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, stop)
    try:
        done = frames.next()
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        sock.close()
    if isinstance(done, tuple) and done[0] == "exit":
        return int(done[1])
    if relayed:  # it died of the signal relayed (SIGTERM, SIGQUIT): so does this process, as it would have
        signal.signal(relayed[-1], signal.SIG_DFL)
        os.kill(os.getpid(), relayed[-1])
    return EXIT_LOST


def hand_over(args: list[str], at: str) -> tuple[socket.socket, Frames, int] | str | None:
    """args sent to the server at address at, with this process's terminal: the connection and the pid
    of the process that runs them, or what forward returns when none does."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connect(sock, at, os.getuid())
        socket.send_fds(sock, [frame(request(args))], list(STDIO_FDS))
    except NotOurs:  # run here, and start no server: it could not take the address
        sock.close()
        return DECLINED
    except OSError:
        sock.close()
        return None
    frames = Frames(sock)
    first = frames.next()
    if isinstance(first, tuple) and first[0] == "pid":
        return sock, frames, int(first[1])
    sock.close()
    if isinstance(first, tuple) and first[0] == DECLINED:
        return DECLINED
    return None  # stale, or gone before it started the command: nothing ran


def request(args: list[str]) -> dict[str, object]:
    streams = (sys.stdin, sys.stdout, sys.stderr)
    return {
        "kind": "run",
        "argv": ["runner", *args],
        **process_state(dict(os.environ)),
        "stdio": [(stream.encoding, stream.errors) if stream else ("utf-8", "strict") for stream in streams],
    }


def process_state(env: dict[str, str]) -> dict[str, object]:
    """What a process the server forks must take on to be this one's as a process started from here
    would be: env, this directory, umask, resource limits (ulimit) and nice value."""
    import resource

    mask = os.umask(0o022)
    os.umask(mask)
    limits = {
        name: resource.getrlimit(getattr(resource, name))
        for name in dir(resource)
        if name.startswith("RLIMIT_")
    }
    return {
        "cwd": os.getcwd(),  # noqa: PTH109 - pathlib is a tenth of what the client imports
        "env": env,
        "umask": mask,
        "limits": limits,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
    }


# A server started by a command imports runner's modules (about a second of CPU) once that command has
# started: on a machine of few cores they would otherwise slow it by a sixth.
SETTLE_S = 1.0


def start_server() -> None:
    """Start a resident server for the next commands, apart from this one (its own session, no terminal,
    none of this process's files); one that finds another already serving leaves quietly."""
    import subprocess

    subprocess.Popen(
        [sys.executable, "-m", "runner.cli.resident.server", "--after", str(SETTLE_S)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def ask(kind: str, at: str | None = None) -> tuple[str, dict[str, object]] | None:
    """The answer to a control request (status, stop) of the resident server of this process's cgroups,
    or the one at address at; None when none answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            connect(sock, at or server_address(), os.getuid())
            sock.sendall(frame({"kind": kind}))
        except OSError:
            return None
        answer = Frames(sock).next()
    if isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[1], dict):
        return str(answer[0]), answer[1]
    return None
