"""What PostgreSQL ``text`` and ``jsonb`` cannot store, found before a write fails on it: NUL characters, lone
UTF-16 surrogates (``"\\ud800"``: no UTF-8 text holds one) and non-finite numbers (JSON has no NaN or Infinity).
One walker, ``paths_where``, finds them anywhere in a JSON-like value, and ``unstorable`` is the one guard every
boundary (API bodies and path parameters, action inputs) applies with the same messages."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

NUL = "\x00"


def has_nul(value: Any) -> bool:
    """Whether ``value`` is a string containing NUL."""
    return isinstance(value, str) and NUL in value


def has_lone_surrogate(value: Any) -> bool:
    """Whether ``value`` is a string that UTF-8 cannot encode (it holds a lone surrogate)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False


def is_non_finite(value: Any) -> bool:
    """Whether ``value`` is a NaN or infinite float."""
    return isinstance(value, float) and not math.isfinite(value)


def paths_where(value: Any, bad: Callable[[Any], bool], path: str = "") -> list[str]:
    """Dotted paths (under ``path``; ``path`` itself for ``value``) of every leaf, and every object key, for
    which ``bad`` is true, in a value of dicts, lists, tuples and pydantic models. A bad key is named escaped
    (``repr``), so the path is printable text itself."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        found: list[str] = []
        for key, item in value.items():
            label = repr(key) if bad(key) else key
            if bad(key):
                found.append(f"{path}.{label}")
            found += paths_where(item, bad, f"{path}.{label}")
        return found
    if isinstance(value, list | tuple):
        return [p for index, item in enumerate(value) for p in paths_where(item, bad, f"{path}.{index}")]
    return [path] if bad(value) else []


NUL_MESSAGE = "text cannot contain NUL (\\u0000) characters, which PostgreSQL cannot store"
SURROGATE_MESSAGE = "text must be valid Unicode (no lone surrogates such as \\ud800)"
NON_FINITE_MESSAGE = "numbers must be finite (JSON has no NaN or Infinity)"
CHECKS: tuple[tuple[Callable[[Any], bool], str], ...] = (
    (has_lone_surrogate, SURROGATE_MESSAGE),  # first: the other messages name keys as given
    (has_nul, NUL_MESSAGE),
    (is_non_finite, NON_FINITE_MESSAGE),
)


def unstorable(value: Any, path: str = "") -> tuple[str, list[str]] | None:
    """The first kind of unstorable content found in ``value`` (lone surrogates, then NUL, then non-finite
    numbers) as ``(message, paths)``, the paths dotted under ``path`` as ``paths_where`` gives them; ``None``
    when PostgreSQL can store all of it."""
    for bad, message in CHECKS:
        found = paths_where(value, bad, path)
        if found:
            return message, found
    return None
