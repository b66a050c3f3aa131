"""What is running, read without asking anyone: supervisor state files checked against the kernel.

The supervisor writes LXCRUN/state/NAME.json (atomically) and holds LXCRUN/state/NAME.running
locked while it supervises NAME. A reader trusts the file only if the lock is held; if the
supervisor died, the init process (pid + start time, so a reused PID never counts) decides
between "still running, orphaned" and "stopped, cleanup pending". No stale PID file can make
a dead container look RUNNING.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from lxctools.locking import is_locked
from lxctools.state import State, read_state_record

if TYPE_CHECKING:
    from lxctools.paths import Layout


class RunState:
    __slots__ = ("state", "record", "supervised")

    def __init__(self, state: State, record: dict[str, Any] | None, supervised: bool) -> None:
        self.state = state
        self.record = record            # the supervisor's state file, if any
        self.supervised = supervised    # a live supervisor owns it

    @property
    def pid(self) -> int | None:
        if self.state is State.STOPPED or not self.record:
            return None
        return self.record.get("pid")


STOPPED = RunState(State.STOPPED, None, False)


def process_starttime(pid: int, *, allow_zombie: bool = False) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if the process is gone
    (a zombie counts as gone unless allow_zombie: its parent has yet to reap it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] == b"Z" and not allow_zombie:
        return None
    return int(fields[19])


def read_runstate(layout: Layout, name: str) -> RunState:
    record = read_state_record(layout.state_path(name))
    if record is None:
        return STOPPED
    state = State(record.get("state", "STOPPED"))
    if is_locked(layout.running_lock_path(name)):
        return RunState(state, record, True)
    pid, start = record.get("pid"), record.get("starttime")
    if pid and start is not None and process_starttime(pid) == start:
        return RunState(state if state.is_active else State.RUNNING, record, False)
    return RunState(State.STOPPED, record, False)
