"""What the supervisor keeps about its clients, waiters, attach sessions and containers."""

from __future__ import annotations

import re
import socket
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from lxctools.monitor import protocol
from lxctools.state import State

RING_SIZE = 128 * 1024   # console scrollback kept per container


@dataclass(eq=False)
class Client:
    sock: socket.socket
    reader: protocol.Reader
    subscribed: re.Pattern | None = None
    closed: bool = False
    on_close: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class Waiter:
    client: Client
    name: str
    states: frozenset[State]
    deadline: float | None
    reply: dict[str, Any] | None = None


@dataclass
class PendingNetRelease:
    """A stopped container's network, released once the kernel has dropped its veth host ends
    (they go with its network namespace) or DEADLINE passed (then deleted by netlink)."""
    state: Any          # runtime.net.HostNetState
    deadline: float     # time.monotonic()


@dataclass(eq=False)
class AttachSession:
    """One pyl-attach: the child the supervisor forked and the caller waiting for it."""
    client: Client
    child: int
    report: socket.socket
    buffer: bytes = b""


@dataclass(eq=False)
class Supervised:
    name: str
    pid: int
    starttime: int
    state: State
    values: dict[str, Any]
    config_file: str
    cgroup_plan: Any
    net_plans: tuple
    net_state: Any
    running_lock: int
    console_master: int | None = None
    tty_masters: list[int] = field(default_factory=list)
    tty_peers: list[int] = field(default_factory=list)   # slave ends held open (sessions.open_peers)
    ring: deque = field(default_factory=lambda: deque())
    ring_bytes: int = 0
    console_log: int | None = None
    pidfd: int | None = None          # only for adopted containers (not our children)
    stop_deadline: float | None = None
    stop_kill_sent: bool = False
    stop_waiters: list[Client] = field(default_factory=list)
    reboot: bool = False
    exec_client: Client | None = None
    attached_ttys: set[int] = field(default_factory=set)   # ttys 1..N handed to a pyl-console
    stop_nokill: bool = False         # pyl-stop --nokill: give up at the deadline, do not kill
    halting: bool = False             # a stop sent the halt signal (or kill): no freezing now
    adopted: bool = False             # started by a supervisor that died: no console, no ttys
    ephemeral: bool = False
    security_plan: Any = None
    netinfo_sock: Any = None          # NETLINK_ROUTE socket inside the container's netns
    pidfiles: list[str] = field(default_factory=list)  # pyl-start -p: hold our PID until the stop
    console_proxy: "ConsoleProxy | None" = None  # the pyl-console attached to the console (tty 0)


@dataclass(eq=False)
class ConsoleProxy:
    """A pyl-console on a container's console: the supervisor goes on reading the console (its
    ring buffer and lxc.console.logfile miss nothing) and copies it to this pty's slave, whose
    master the pyl-console holds; what the pyl-console types comes back through the slave."""
    slave: int
    pending: bytes = b""      # console output the pyl-console has not taken yet
    dropped: int = 0          # bytes given up because it stopped reading (PENDING_LIMIT)

    PENDING_LIMIT = 1024 * 1024


class NullClient:
    closed = True
    on_close: list = []


def signal_number(value: object, default: int) -> int:
    """lxc.signal.* as a number (the config layer validated it; its parser is the one used)."""
    if value in (None, ""):
        return int(default)
    from lxctools.config.validators import parse_signal
    try:
        return parse_signal(str(value).strip())
    except ValueError:
        return int(default)


# The longest the event loop sleeps in one select(): a later deadline is reached by sleeping
# again. epoll takes milliseconds in a C int (a 1e20 s timeout overflows it) and selectors'
# math.ceil fails on inf; either exception ends the loop, and with it every container's
# supervision.
MAX_SLEEP = 3600.0


def deadline_after(timeout: object) -> float | None:
    """time.monotonic() + TIMEOUT seconds for a client's wait or stop, None for "forever": a
    negative timeout (LXC's -1) and anything that is no finite number (inf, nan: the CLI
    refuses them, a client of the socket might not)."""
    import math
    import time
    try:
        value = float(timeout)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return time.monotonic() + value
