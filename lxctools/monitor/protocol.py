"""Messages between pyl commands and the supervisor: one JSON object per line on a unix stream
socket; file descriptors (execute's stdio, console pty masters) travel with SCM_RIGHTS.

Clients use the builtin `_socket` and lxctools.cjson, not `socket` and `json`: those two cost a
command ~10 ms of imports (`enum`, `selectors`, `re`). Both kinds of socket object work here."""

from __future__ import annotations

import sys
from _socket import CMSG_SPACE, SCM_RIGHTS, SOL_SOCKET

from lxctools import cjson

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_FDS = 8
_INT = 4  # sizeof(int): SCM_RIGHTS carries an array of C ints


def send(sock, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = (cjson.dumps(message) + "\n").encode()
    if fds:
        payload = b"".join(fd.to_bytes(_INT, sys.byteorder, signed=True) for fd in fds)
        sock.sendmsg([data], [(SOL_SOCKET, SCM_RIGHTS, payload)])
    else:
        sock.sendall(data)


class Reader:
    """Splits a stream into JSON lines and collects the fds that arrived with them."""

    def __init__(self, sock) -> None:
        self.sock = sock
        self.buffer = b""
        self.fds: list[int] = []
        self.eof = False

    def fill(self) -> bool:
        """Read once; False on EOF."""
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(65536, CMSG_SPACE(MAX_FDS * _INT))
        except (ConnectionResetError, BrokenPipeError):
            data, ancdata = b"", []
        for level, kind, payload in ancdata:
            if level == SOL_SOCKET and kind == SCM_RIGHTS:
                whole = len(payload) - len(payload) % _INT
                self.fds.extend(int.from_bytes(payload[i:i + _INT], sys.byteorder, signed=True)
                                for i in range(0, whole, _INT))
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def next_message(self) -> dict[str, Any] | None:
        """A complete message already buffered, or None."""
        if b"\n" not in self.buffer:
            return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return cjson.loads(line)

    def take_fds(self) -> list[int]:
        fds, self.fds = self.fds, []
        return fds

    def read_message(self) -> dict[str, Any] | None:
        """Blocking: the next message, or None at EOF."""
        while True:
            message = self.next_message()
            if message is not None:
                return message
            if not self.fill():
                return None
