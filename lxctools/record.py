"""Record: the equality, hash and repr of a small value class, from its __slots__.

What namedtuple gave the copy code's value classes (Storage, CopyRequest, SnapshotInfo),
without `collections` (~1.5 ms of pyl-copy's start-up on a 2-vCPU VM, with operator, keyword
and reprlib) or `dataclasses` (~5 ms). Each subclass lists its fields in __slots__ and writes
its own __init__ (keywords and defaults stay visible where the class is defined).
"""

from __future__ import annotations


class Record:
    __slots__ = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, field) for field in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def as_dict(self) -> dict:
        """Field -> value, in __slots__ order (what dataclasses.asdict gave, one level deep)."""
        return {field: getattr(self, field) for field in self.__slots__}

    def replace(self, **changes: object) -> "Record":
        """A copy with some fields changed (dataclasses.replace); an unknown field is a TypeError."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        copy = object.__new__(type(self))
        for field in self.__slots__:
            setattr(copy, field, changes.get(field, getattr(self, field)))
        return copy

    def __repr__(self) -> str:
        fields = ", ".join(f"{field}={getattr(self, field)!r}" for field in self.__slots__)
        return f"{type(self).__name__}({fields})"
