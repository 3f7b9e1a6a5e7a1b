"""Base of the API's request bodies: text containing NUL (``\\u0000``) is refused with 422 naming the field and
the path inside it. JSON allows the character but PostgreSQL text and jsonb cannot store it, so without this
check such a request would fail deep inside a write instead of at the door."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator

NUL = "\x00"


def nul_paths(value: Any, path: str = "") -> list[str]:
    """Dotted paths (relative to ``value``, ``""`` for itself) of every string, or object key, containing NUL."""
    if isinstance(value, str):
        return [path] if NUL in value else []
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        found = [f"{path}.{key!r}" for key in value if isinstance(key, str) and NUL in key]
        return found + [p for key, item in value.items() for p in nul_paths(item, f"{path}.{key}")]
    if isinstance(value, list | tuple):
        return [p for index, item in enumerate(value) for p in nul_paths(item, f"{path}.{index}")]
    return []


class RequestBody(BaseModel):
    """A request body whose every field, however deep, is free of NUL characters."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        found = nul_paths(value)
        if found:
            where = ", ".join(f"{info.field_name}{p}" for p in found)
            raise ValueError(f"text cannot contain NUL (\\u0000) characters, which PostgreSQL cannot store: {where}")
        return value
