"""Base of the API's request bodies: text containing NUL (``\\u0000``) is refused with 422 naming the field and
the path inside it. JSON allows the character but PostgreSQL text and jsonb cannot store it, so without this
check such a request would fail deep inside a write instead of at the door. Likewise for the non-finite numbers
(``NaN``, ``Infinity``, ``1e999``) that Python's JSON parser accepts although JSON has none and jsonb cannot
store them; for lone UTF-16 surrogates (``"\\ud800"``), which no UTF-8 text can hold; and for values nested more
than ``MAX_DEPTH`` levels deep, which recursion and serialisation (pydantic stops at 255 levels, and a run's
payload travels inside its Temporal input) cannot take."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator

from psa.db.storable import unstorable

MAX_DEPTH = 64
"""How deep objects and arrays may nest inside one field of a request body."""


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels in ``value`` (iterative, so any depth is safe)."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


class RequestBody(BaseModel):
    """A request body whose every field, however deep, is free of NUL characters, lone surrogates and non-finite
    numbers, and nests at most ``MAX_DEPTH`` levels."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        if too_deep(value):  # first: the checks below recurse
            raise ValueError(f"JSON nests deeper than {MAX_DEPTH} levels: {info.field_name}")
        problem = unstorable(value, info.field_name or "")
        if problem:
            message, paths = problem
            raise ValueError(f"{message}: {', '.join(paths)}")
        return value
