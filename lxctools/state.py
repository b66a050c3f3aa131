"""Container states (LXC's eight), the operations each allows, and the supervisor's state files.

The table ALLOWED drives both the precondition check of every operation and the
completion filters (pyl-attach offers running containers, pyl-start stopped ones...).
"""

from __future__ import annotations

import os

from lxctools import cjson

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

STATE_NAMES = ("STOPPED", "STARTING", "RUNNING", "STOPPING", "ABORTING", "FREEZING", "FROZEN", "THAWED")


class _StateType(type):
    """Makes State behave like a StrEnum (State("RUNNING") is State.RUNNING, iteration in
    LXC's order) without importing `enum`, which costs every command ~4 ms of start-up."""

    def __iter__(cls):
        return iter(cls._members.values())

    def __len__(cls) -> int:
        return len(cls._members)

    def __call__(cls, value: object) -> "State":
        try:
            return cls._members[value]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid State") from None


class State(str, metaclass=_StateType):
    __slots__ = ()
    _members: dict[str, "State"] = {}
    STOPPED: "State"
    STARTING: "State"
    RUNNING: "State"
    STOPPING: "State"
    ABORTING: "State"
    FREEZING: "State"
    FROZEN: "State"
    THAWED: "State"

    def __repr__(self) -> str:
        return f"<State.{str.__str__(self)}>"

    def __str__(self) -> str:
        return str.__str__(self)

    @property
    def is_running(self) -> bool:
        """LXC's "running": anything but STOPPED."""
        return self is not State.STOPPED

    @property
    def is_active(self) -> bool:
        return self in (State.RUNNING, State.FROZEN, State.FREEZING, State.THAWED)

    def allows(self, operation: str) -> bool:
        return self in ALLOWED[operation]


for _name in STATE_NAMES:
    _member = str.__new__(State, _name)
    State._members[_name] = _member
    setattr(State, _name, _member)
del _name, _member

_LIVE = frozenset({State.RUNNING, State.FROZEN, State.FREEZING, State.THAWED})

ALLOWED: dict[str, frozenset[State]] = {
    "start": frozenset({State.STOPPED}),
    "execute": frozenset({State.STOPPED}),
    "stop": frozenset(State) - {State.STOPPED},
    "attach": frozenset({State.RUNNING}),
    "console": frozenset({State.RUNNING, State.FROZEN}),
    "freeze": frozenset({State.RUNNING, State.FROZEN, State.FREEZING}),
    "unfreeze": frozenset({State.FROZEN, State.FREEZING, State.THAWED}),
    "destroy": frozenset({State.STOPPED}),
    "copy": frozenset({State.STOPPED}),
    "snapshot": frozenset({State.STOPPED}),
    "cgroup": _LIVE,
    "device": frozenset({State.RUNNING}),
    "netstat": _LIVE,
    "ps": _LIVE,
    "info": frozenset(State),
    "any": frozenset(State),
}


def parse_states(text: str) -> frozenset[State]:
    """Parse 'RUNNING|FROZEN' (pyl-wait -s); raises ValueError naming a bad state."""
    states = set()
    for part in text.split("|"):
        part = part.strip().upper()
        if not part:
            continue
        try:
            states.add(State(part))
        except ValueError:
            raise ValueError(f"invalid state '{part}'") from None
    if not states:
        raise ValueError("no state given")
    return frozenset(states)


def write_json_atomic(path: Path, data: Any, mode: int = 0o600) -> None:
    """Write JSON over path whole (kernel.files.replace_file): a reader sees the old file or the
    new one, never a part. Not fsync'd: these are run-time state and caches."""
    from lxctools.kernel.files import replace_file
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    replace_file(str(path), cjson.dumps(data).encode(), mode, durable=False)


def read_json(path: str | Path) -> Any | None:
    """The JSON document at PATH, or None if there is none: no file, a folder where the file
    belongs (or a file where a folder of its path does), or text that is not JSON."""
    try:
        with open(path, "rb") as f:
            return cjson.loads(f.read())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError):
        return None


def read_state_record(path: str | Path) -> dict | None:
    """A running container's state file (the supervisor's record), or None if there is none or
    it is no record: unreadable JSON, or the wrong shape (edited by hand). Every reader of the
    file takes it from here, so a mangled one is "no record" to all of them, never a crash."""
    record = read_json(path)
    if not isinstance(record, dict):
        return None
    pid, start, state = record.get("pid"), record.get("starttime"), record.get("state", "STOPPED")
    if not (isinstance(pid, int) and pid >= 0 and (start is None or isinstance(start, int))
            and state in State._members and are_config_values(record.get("values", {}))
            and isinstance(record.get("config_file", ""), str)):
        return None
    return record


def are_config_values(values: object) -> bool:
    """A config's values as a state record or the ls cache keeps them: key -> string or list
    of strings (what pyl-ls and pyl-info take from them without a second look)."""
    return isinstance(values, dict) and all(
        isinstance(k, str) and (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)))
        for k, v in values.items())

