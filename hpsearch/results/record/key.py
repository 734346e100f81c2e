"""The base of every stored key: the key string, its type, unit and meaning, defined together."""

from __future__ import annotations

from enum import StrEnum


class RecordKey(StrEnum):
    """A stored key: equal to its string (so `user_attrs.get(TrialAttr.ERROR)` reads old studies), with
    the type its value is stored as, its unit ("" when it has none) and what it means."""

    kind: str
    unit: str
    meaning: str

    def __new__(cls, key: str, kind: str, unit: str, meaning: str) -> RecordKey:
        member = str.__new__(cls, key)
        member._value_ = key
        member.kind, member.unit, member.meaning = kind, unit, meaning
        return member
