"""pyl-autostart's selection, ordering and execution (reference §2.15).

Selection is pure data (AutostartEntry values in, an ordered list out) so tests need no
containers; `run_autostart` then acts on real containers through the Container API.
Rules, as lxc-autostart: containers with lxc.start.auto = 1 (all with ignore_auto), taken
group by group in the order given (default: only the NULL group, i.e. no lxc.group); a
container is handled in the first group pass that matches it. Inside a pass, lxc.start.order
ascending then name (both reversed for shutdown and kill). After each successful start or
reboot, sleep lxc.start.delay seconds. Exit 0; 1 when every container acted on failed, and
when there are no containers at all; 2 when some failed.
"""

from __future__ import annotations

import os
import sys
import time

from lxctools.errors import PylError
from lxctools.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import TextIO

# A plain class and a Record, not enum and dataclasses: with typing they were ~25 ms of a
# ~50 ms `pyl-autostart -L` (docs/PERFORMANCE.md).
NULL_GROUP = ""


class Action:
    """What pyl-autostart does: Action.START, SHUTDOWN, REBOOT or KILL (compared with `is`)."""

    __slots__ = ("value",)
    START: Action
    SHUTDOWN: Action
    REBOOT: Action
    KILL: Action

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Action.{self.value.upper()}"

    @property
    def wants_running(self) -> bool:
        """Start acts on stopped containers; the others on running ones."""
        return self is not Action.START

    @property
    def reverse(self) -> bool:
        return self in (Action.SHUTDOWN, Action.KILL)

    @property
    def lists_delay(self) -> bool:
        return self in (Action.START, Action.REBOOT)


Action.START, Action.SHUTDOWN, Action.REBOOT, Action.KILL = (
    Action("start"), Action("shutdown"), Action("reboot"), Action("kill"))


class AutostartEntry(Record):
    __slots__ = ("name", "auto", "order", "delay", "groups")

    def __init__(self, name: str, auto: bool, order: int, delay: int, groups: tuple[str, ...]) -> None:
        self.name = name
        self.auto = auto
        self.order = order
        self.delay = delay
        self.groups = groups


def _int(value: object, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def entry_from_values(name: str, values: Mapping[str, object]) -> AutostartEntry:
    """lxc.group lines may each hold several space-separated groups."""
    from lxctools.config import lines
    groups = tuple(g for line in lines(values.get("lxc.group")) for g in line.split())
    return AutostartEntry(name=name, auto=_int(values.get("lxc.start.auto")) == 1,
                          order=_int(values.get("lxc.start.order")),
                          delay=max(0, _int(values.get("lxc.start.delay"))), groups=groups)


def parse_groups(options: Iterable[str]) -> tuple[list[str], list[str]]:
    """-g values (each a comma list; an empty element is the NULL group) -> (groups in order,
    warnings for duplicates, which are ignored)."""
    groups: list[str] = []
    warnings: list[str] = []
    for option in options:
        for group in option.split(","):
            if group in groups:
                warnings.append(f'Duplicate group "{group}" in list - ignoring' if group
                                else "Duplicate NULL group in list - ignoring")
            else:
                groups.append(group)
    return groups, warnings


def in_group(entry: AutostartEntry, group: str) -> bool:
    if group == NULL_GROUP:
        return not entry.groups
    return group in entry.groups


def select(entries: Iterable[AutostartEntry], *, groups: list[str] | None, all_groups: bool,
           ignore_auto: bool, reverse: bool = False) -> list[AutostartEntry]:
    """The containers to handle, in the order to handle them."""
    candidates = sorted((e for e in entries if ignore_auto or e.auto),
                        key=lambda e: (e.order, e.name.encode()), reverse=reverse)
    if all_groups:
        return candidates
    chosen: list[AutostartEntry] = []
    taken: set[str] = set()
    for group in groups or [NULL_GROUP]:
        for entry in candidates:
            if entry.name not in taken and in_group(entry, group):
                chosen.append(entry)
                taken.add(entry.name)
    return chosen


def list_line(entry: AutostartEntry, action: Action) -> str:
    return f"{entry.name} {entry.delay}" if action.lists_delay else entry.name


def exit_status(defined: int, acted: int, failed: int) -> int:
    if defined == 0 or (acted > 0 and failed == acted):
        return 1
    return 2 if failed else 0


# ---- acting on real containers -----------------------------------------------------------------
def load_entries(layout, err: TextIO) -> list[AutostartEntry]:
    """Every defined container this user may control whose config loads; others are skipped."""
    from lxctools.container import Container, list_container_names
    entries = []
    for name in list_container_names(layout):
        container = Container(name, layout)
        if not os.access(container.dir_str, os.W_OK):
            continue
        try:
            entries.append(entry_from_values(name, container.load_config().values()))
        except PylError as exc:
            err.write(f"pyl-autostart: {name}: skipped: {exc.message}\n")
    return entries


def run_autostart(layout, action: Action, *, groups: list[str] | None, all_groups: bool,
                  ignore_auto: bool, timeout: float, list_only: bool, out: TextIO = sys.stdout,
                  err: TextIO = sys.stderr, quiet: bool = False,
                  sleep: Callable[[float], None] = time.sleep) -> int:
    from lxctools.container import Container
    entries = load_entries(layout, err)
    chosen = select(entries, groups=groups, all_groups=all_groups, ignore_auto=ignore_auto,
                    reverse=action.reverse)
    acted = failed = 0
    for entry in chosen:
        container = Container(entry.name, layout)
        if container.state().is_running != action.wants_running:
            continue
        acted += 1
        if list_only:
            out.write(list_line(entry, action) + "\n")
            out.flush()
            continue
        try:
            _act(container, action, timeout)
        except PylError as exc:
            failed += 1
            if not quiet:
                err.write(f"pyl-autostart: {entry.name}: {action.value} failed: {exc.message}\n")
            continue
        if action.lists_delay and entry.delay:
            sleep(entry.delay)
    return exit_status(len(entries), acted, failed)


def _act(container, action: Action, timeout: float) -> None:
    from lxctools.errors import NotRunningError
    try:
        if action is Action.START:
            container.start()
        elif action is Action.SHUTDOWN:
            # A clean shutdown; the supervisor kills after the timeout, as lxc-autostart -s.
            container.stop(timeout=timeout)
        elif action is Action.REBOOT:
            container.stop(reboot=True, timeout=timeout)
        else:
            container.stop(kill=True, timeout=0)
    except NotRunningError:
        pass  # it stopped between the check and the request: the goal is reached
