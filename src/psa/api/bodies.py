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

from psa.db.storable import has_lone_surrogate, has_nul, is_non_finite, paths_where

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
        found = paths_where(value, has_lone_surrogate)  # before the others: their messages name keys as given
        if found:
            where = ", ".join(f"{info.field_name}{p}" for p in found)
            raise ValueError(f"text must be valid Unicode (no lone surrogates such as \\ud800): {where}")
        found = paths_where(value, has_nul)
        if found:
            where = ", ".join(f"{info.field_name}{p}" for p in found)
            raise ValueError(f"text cannot contain NUL (\\u0000) characters, which PostgreSQL cannot store: {where}")
        found = paths_where(value, is_non_finite)
        if found:
            where = ", ".join(f"{info.field_name}{p}" for p in found)
            raise ValueError(f"numbers must be finite (JSON has no NaN or Infinity): {where}")
        return value
