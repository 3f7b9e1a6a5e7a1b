"""The one rule for assignment targets (``transform.assign`` keys, ``action.call`` ``saveAs``, ``captureErrorAs``):
publish validation checks a target with it and the run workflow writes through it (docs/automation.md,
"Definition format").

A target is a dotted path in ``payload.``, ``vars.`` or ``meta.``; a bare name (``contact`` or ``result.id``)
means ``vars.<name>``. *Ours* (the reference's two assignment functions disagree; docs/decisions.md,
"Automation runtime"): JSON-pointer targets (``/a/b``), the read-only scopes ``error`` and ``local``, a bare
scope (``vars``) and the segments ``__proto__``, ``prototype`` and ``constructor`` are rejected.

Pure: workflow code imports it.
"""

from __future__ import annotations

ASSIGN_SCOPES = ("payload", "vars", "meta")
READ_ONLY_SCOPES = ("error", "local")
FORBIDDEN_SEGMENTS = frozenset({"__proto__", "prototype", "constructor"})


class InvalidAssignPath(ValueError):
    """An assignment target breaks the path rules (the message says which)."""


def normalize_assign_path(path: str) -> str:
    """The canonical ``scope.a.b`` form of an assignment target: ``payload.x``, ``vars.x`` and ``meta.x``
    stay; a bare ``x`` or ``x.y`` becomes ``vars.x`` / ``vars.x.y``; surrounding blanks are trimmed.

    Raises InvalidAssignPath for an empty path or segment (``a..b``), a JSON pointer (``/a``), a bare scope
    (``vars``), a read-only scope (``error.x``, ``local.x``) or a ``__proto__``/``prototype``/``constructor``
    segment. Reference: assignmentUtils / assignToScopePath (see the module doc for our choices).
    """
    if not isinstance(path, str) or not path.strip():
        raise InvalidAssignPath("Assignment path is empty")
    text = path.strip()
    if text.startswith("/"):
        raise InvalidAssignPath(
            f"Assignment path must be dotted (payload.x, vars.x, meta.x or a name), not a JSON pointer: {text}"
        )
    segments = text.split(".")
    if any(not segment.strip() for segment in segments):
        raise InvalidAssignPath(f"Assignment path has an empty segment: {text}")
    bad = next((s for s in segments if s in FORBIDDEN_SEGMENTS), None)
    if bad:
        raise InvalidAssignPath(f'Assignment path uses the forbidden segment "{bad}": {text}')
    head = segments[0]
    if head in READ_ONLY_SCOPES:
        raise InvalidAssignPath(f'Assignment path cannot write to the read-only scope "{head}": {text}')
    if head in ASSIGN_SCOPES:
        if len(segments) == 1:
            raise InvalidAssignPath(f"Assignment path must name a field inside {head} ({head}.name): {text}")
        return text
    return "vars." + text


def assign_segments(path: str) -> list[str]:
    """The segments of ``path`` in canonical form, its scope first: ``"contact.id"`` gives
    ``["vars", "contact", "id"]``. Raises InvalidAssignPath as :func:`normalize_assign_path`."""
    return normalize_assign_path(path).split(".")
