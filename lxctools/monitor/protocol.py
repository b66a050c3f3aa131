"""Messages between pyl commands and the supervisor: one JSON object per line on a unix stream
socket; file descriptors (execute's stdio, console pty masters) travel with SCM_RIGHTS."""

from __future__ import annotations

import array
import json
import socket
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_FDS = 8


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(data)


class Reader:
    """Splits a stream into JSON lines and collects the fds that arrived with them."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.fds: list[int] = []
        self.eof = False

    def fill(self) -> bool:
        """Read once; False on EOF."""
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(MAX_FDS * 4))
        except (ConnectionResetError, BrokenPipeError):
            data, ancdata = b"", []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
                self.fds.extend(fds)
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
        return json.loads(line)

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
