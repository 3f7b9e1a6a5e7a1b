"""What a constraint violation is about: the one reading of a database integrity error (SQLSTATE class 23)
into its kind, its constraint and the input fields that constraint covers, taken from the table metadata of
psa.db.schema (docs/architecture.md, "Error contract").

The boundaries turn a ``Violation`` into their own error (psa.automation.errors.from_database for actions and
the API); domain code that knows more (which of several email rows was taken) reads it to raise a more specific
domain error.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from sqlalchemy import CheckConstraint, Column, ForeignKeyConstraint, Index, Table, UniqueConstraint
from sqlalchemy.exc import DBAPIError

from psa.db.schema import metadata

Kind = Literal["unique", "foreign_key", "not_null", "check", "other"]
_KIND_BY_SQLSTATE: dict[str, Kind] = {
    "23505": "unique",
    "23503": "foreign_key",
    "23502": "not_null",
    "23514": "check",
}


@dataclasses.dataclass(frozen=True)
class Violation:
    """One integrity constraint violation: ``kind``, the ``constraint`` name (None for a NOT NULL violation),
    the ``table`` the driver reported and the input ``fields`` involved, most specific last (``("tagged_type",
    "tag_text")`` for the tag definitions' unique key; ``()`` when the constraint is not in the metadata)."""

    kind: Kind
    constraint: str | None
    table: str | None
    fields: tuple[str, ...]

    @property
    def field(self) -> str | None:
        """The field to name in an error: the most specific of ``fields``, or None."""
        return self.fields[-1] if self.fields else None


def _field(column: Column) -> str:
    """The input field of a column: the name column a ``name_key`` column is the key of, else the column."""
    return column.info.get("key_of", column.name)


def _fields(columns: list[Column]) -> tuple[str, ...]:
    """The fields of a constraint's columns without the leading ``tenant`` (unless it is the only column)."""
    named = [column for column in columns if column.name != "tenant"] or columns
    return tuple(_field(column) for column in named)


def _check_fields(table: Table, check: CheckConstraint) -> tuple[str, ...]:
    """The columns a table-level CHECK mentions (``client_type IN (...)`` -> ``("client_type",)``)."""
    sql = str(check.sqltext)
    return tuple(_field(c) for c in table.columns if re.search(rf"\b{re.escape(c.name)}\b", sql))


def _constraint_fields() -> dict[str, tuple[str, ...]]:
    """Every named constraint and unique index of the schema -> its fields. A unique expression index names
    its fields in ``info["fields"]``."""
    fields: dict[str, tuple[str, ...]] = {}
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, ForeignKeyConstraint):
                fields[str(constraint.name)] = _fields(list(constraint.columns))
            elif isinstance(constraint, CheckConstraint):
                fields[str(constraint.name)] = _check_fields(table, constraint)
            elif isinstance(constraint, UniqueConstraint) or constraint is table.primary_key:
                fields[str(constraint.name)] = _fields(list(constraint.columns))
        for index in table.indexes:
            if isinstance(index, Index) and index.unique:
                fields[str(index.name)] = tuple(index.info.get("fields", ())) or _fields(list(index.columns))
    return fields


CONSTRAINT_FIELDS: dict[str, tuple[str, ...]] = _constraint_fields()
"""Constraint or unique index name -> the input fields it covers, from psa.db.schema."""


def violation(exc: DBAPIError) -> Violation | None:
    """The integrity violation ``exc`` reports, or None when it is another database error (not SQLSTATE
    class 23). A NOT NULL violation names the column; a constraint the schema does not declare (a trigger's
    own name, say) has no fields."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if not sqlstate.startswith("23"):
        return None
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    table = getattr(diag, "table_name", None)
    kind = _KIND_BY_SQLSTATE.get(sqlstate, "other")
    if kind == "not_null":
        column = getattr(diag, "column_name", None)
        return Violation(kind, constraint, table, (column,) if column else ())
    return Violation(kind, constraint, table, CONSTRAINT_FIELDS.get(constraint or "", ()))
