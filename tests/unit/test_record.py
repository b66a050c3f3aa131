"""lxctools.record.Record: what the value classes that replaced dataclasses rely on."""

from __future__ import annotations

import pytest

from lxctools import inspection
from lxctools.record import Record


class Pair(Record):
    __slots__ = ("left", "right")

    def __init__(self, left: int, right: int = 0) -> None:
        self.left = left
        self.right = right


def test_equality_hash_and_repr_come_from_the_slots():
    assert Pair(1, 2) == Pair(1, 2) and Pair(1, 2) != Pair(2, 1)
    assert hash(Pair(1, 2)) == hash(Pair(1, 2))
    assert repr(Pair(1)) == "Pair(left=1, right=0)"


def test_replace_copies_with_changes_and_refuses_unknown_fields():
    original = Pair(1, 2)
    changed = original.replace(right=5)
    assert changed == Pair(1, 5) and original == Pair(1, 2) and type(changed) is Pair
    with pytest.raises(TypeError, match="no field 'middle'"):
        original.replace(middle=3)


def test_as_dict_keeps_slot_order():
    assert list(Pair(3, 4).as_dict().items()) == [("left", 3), ("right", 4)]


def test_inspection_rows_serialize_as_the_dataclasses_did():
    row = inspection.ProcessRow(pid=7, nspid=1, container="c1", uid=0, user="root", cpu_ticks=250,
                                command="init")
    assert row.to_json(hz=100) == {"pid": 7, "nspid": 1, "container": "c1", "uid": 0, "user": "root",
                                   "cpu_ticks": 250, "command": "init", "time": "00:00:02"}
    sock = inspection.SocketRow("tcp", "0.0.0.0:22", "0.0.0.0:0", "LISTEN", True, 0, 0, 99)
    owned = sock.with_owner(5, 1, "sshd")
    assert (owned.pid, owned.nspid, owned.program, owned.inode) == (5, 1, "sshd", 99) and sock.pid is None
    stats = inspection.StatsRow("c1", 10, blkio_read=1, blkio_write=2)
    assert stats.to_json()["blkio_bytes"] == 3 and stats.to_json()["mem_bytes"] is None
    assert stats.pids is None and stats.replace(pids=3).pids == 3
    with pytest.raises(TypeError, match="no field 'mem'"):
        inspection.StatsRow("c1", 10, mem=1)
