"""Canonical JSON: the one text form psa hashes and stores for JSON-like values.

Keys sorted, compact separators, non-ASCII kept as UTF-8 (not ``\\u`` escapes), and values JSON has no type for
(UUIDs, datetimes, decimals) written as their ``str()``. Definition hashes, idempotency keys and the ledger's
stored inputs all use it, so the same value always gives the same text and the same hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON text (see the module docstring)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_hash(value: Any) -> str:
    """SHA-256 hex digest of the UTF-8 canonical JSON of ``value`` (64 lowercase hex characters)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
