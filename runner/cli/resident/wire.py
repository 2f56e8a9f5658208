"""What the resident client and server say to each other, and where: no I/O beyond the socket given.

The address is an abstract unix socket (Linux: no file to go stale, gone with its process) named by the
user, by the installation (interpreter and import path), so that a server only ever runs the code its
clients would import, and by the caller's cgroups, so that the commands it forks, and their runs, stay in
their caller's (a terminal's scope, a batch system's job, a systemd unit with a memory limit): one server
per cgroup. The server takes requests from its own user only, and a client sends them to its own user's
server only (SO_PEERCRED both ways: an abstract name is anyone's to take). Messages are
frames: a 4-byte length, then marshal data (trusted: both ends are the same user's same Python).

    client -> server   {"argv", "cwd", "env", "umask", "stdio"}, with the client's fds 0, 1, 2 attached
    server -> client   ("pid", pid) of the process running the command, or ("stale", None): run it yourself
    server -> client   ("exit", code) when the command is done
"""

from __future__ import annotations

import marshal
import socket
import struct
import zlib
from collections.abc import Sequence
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 16 * 1024 * 1024  # an environment and argv of any sane size
STDIO_FDS = (0, 1, 2)


def address(uid: int, executable: str, path: Sequence[str], cgroups: str, named: str | None = None) -> str:
    """The abstract socket name of the resident server for this user, installation and cgroups (what
    /proc/self/cgroup says). path is the import path without its first entry (the script's or the current
    directory, which differ per call but do not hold runner). named replaces the user and installation
    (RUNNER_RESIDENT_ADDRESS: servers side by side, the tests' own)."""
    return f"\0{family(uid, executable, path, named)}{zlib.crc32(cgroups.encode()):08x}"


def family(uid: int, executable: str, path: Sequence[str], named: str | None = None) -> str:
    """What the names of this user's and installation's servers (one per cgroup) start with, without the
    abstract namespace's NUL."""
    if named:
        return f"{named}-"
    installation = "\0".join([executable, *path]).encode()
    return f"runner-resident-{uid}-{zlib.crc32(installation):08x}-"


LISTENING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags column


def listening(proc_net_unix: str, prefix: str) -> list[str]:
    """The abstract socket names starting with prefix that a process listens on, from /proc/net/unix
    (where an abstract name is shown with an @ for its NUL), each with its NUL."""
    found = []
    for line in proc_net_unix.splitlines()[1:]:
        fields = line.split(None, 7)
        if len(fields) == 8 and fields[7].startswith(f"@{prefix}") and int(fields[3], 16) & LISTENING:
            found.append(f"\0{fields[7][1:]}")
    return sorted(set(found))


def frame(message: Any) -> bytes:
    data = marshal.dumps(message)
    return HEADER.pack(len(data)) + data


class Frames:
    """Reads whole frames from a connected socket; the first may carry file descriptors."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""
        self.fds: list[int] = []

    def next(self, *, with_fds: int = 0) -> Any:
        """The next message, or None when the other end closed (or sent garbage) before a whole one."""
        while len(self._buffer) < HEADER.size or len(self._buffer) < HEADER.size + self._length():
            if with_fds and not self.fds:
                data, fds, _flags, _address = socket.recv_fds(self._sock, 65536, with_fds)
                self.fds.extend(fds)
            else:
                data = self._sock.recv(65536)
            if not data:
                return None
            self._buffer += data
            if self._length() > MAX_FRAME:
                return None
        end = HEADER.size + self._length()
        data, self._buffer = self._buffer[HEADER.size : end], self._buffer[end:]
        try:
            return marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return None

    def _length(self) -> int:
        return int(HEADER.unpack_from(self._buffer)[0]) if len(self._buffer) >= HEADER.size else 0


class NotOurs(OSError):
    """The process listening at a resident server's address is another user's: an abstract socket's name
    is anyone's to take, so nothing (the environment, the terminal) is sent to it."""


def connect(sock: socket.socket, address: str, uid: int) -> None:
    """Connect sock to address, where a process of user uid must listen (NotOurs otherwise)."""
    sock.connect(address)
    if peer(sock)[1] != uid:
        raise NotOurs(f"{address!r} is another user's")


def peer(sock: socket.socket) -> tuple[int, int]:
    """The process id and user id of the process at the other end of a unix socket (SO_PEERCRED)."""
    credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", credentials)
    return int(pid), int(uid)


def cgroup_label(cgroups: str) -> str:
    """A short name for the cgroups /proc/PID/cgroup lists: each hierarchy's path that is not its root,
    the unified one's (cgroup v2) as it is, a v1 one's as controllers:path; "/" when all are at the root."""
    entries = [line.split(":", 2) for line in cgroups.splitlines() if line.count(":") >= 2]
    placed = [
        path if number == "0" and not controllers else f"{controllers}:{path}"
        for number, controllers, path in entries
        if path != "/"
    ]
    return " ".join(placed) or "/"
