"""What a stored JSON value may hold: the same rules for payloads and results in every mode.

PostgreSQL stores U+0000 in neither ``text`` nor ``jsonb``; an integer beyond 64 bits would
come back changed from at least one of the stores; NaN and the infinities are not JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

NON_FINITE = "NaN and Infinity are not valid JSON numbers"
NUL_CHARACTER = "the character U+0000 (NUL) cannot be stored in a string"
BIG_INTEGER = "integers beyond 64 bits cannot be stored exactly"
_INT_RANGE = range(-(2**63), 2**64)

Path = list[str | int]


def first_path(value: Any, bad: Callable[[Any], bool]) -> Path | None:
    """The path to the first value (or object key) in ``value`` that is ``bad``, if any."""
    if bad(value):
        return []
    items: Any
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and bad(key):
            return [key]
        found = first_path(item, bad)
        if found is not None:
            return [key, *found]
    return None


def holds_nul(value: Any) -> bool:
    """A string holding U+0000, which PostgreSQL cannot store."""
    return isinstance(value, str) and "\x00" in value


def is_beyond_64_bits(value: Any) -> bool:
    """An integer no store keeps exactly."""
    return isinstance(value, int) and not isinstance(value, bool) and value not in _INT_RANGE


def is_non_finite(value: Any) -> bool:
    """NaN or an infinity."""
    return isinstance(value, float) and not math.isfinite(value)


_RULES = ((holds_nul, NUL_CHARACTER), (is_beyond_64_bits, BIG_INTEGER), (is_non_finite, NON_FINITE))


def unstorable(value: Any) -> tuple[Path, str] | None:
    """Where ``value`` breaks a rule above and which, or None when every store keeps it."""
    for bad, reason in _RULES:
        path = first_path(value, bad)
        if path is not None:
            return path, reason
    return None
