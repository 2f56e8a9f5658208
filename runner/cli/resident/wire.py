"""What the resident client and server say to each other, and where: no I/O beyond the socket given.

The address is an abstract unix socket (Linux: no file to go stale, gone with its process) named by the
user and by the installation (interpreter and import path), so that a server only ever runs the code its
clients would import; the server takes requests from its own user only (SO_PEERCRED). Messages are
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


def address(uid: int, executable: str, path: Sequence[str]) -> str:
    """The abstract socket name of the resident server for this user and installation. path is the
    import path without its first entry (the script's or the current directory, which differ per call
    but do not hold runner)."""
    installation = "\0".join([executable, *path]).encode()
    return f"\0runner-resident-{uid}-{zlib.crc32(installation):08x}"


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


def peer(sock: socket.socket) -> tuple[int, int]:
    """The process id and user id of the process at the other end of a unix socket (SO_PEERCRED)."""
    credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", credentials)
    return int(pid), int(uid)
