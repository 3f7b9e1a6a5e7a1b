"""One key per unique name: ``name_key`` columns covered by the unique indexes

Names that must be unique, or are looked up by name, were compared three ways: in Python (``split()`` and
``lower()``), in the lookups' SQL (``\\s`` and ``lower()``) and in the unique indexes (``lower(type_name)``, or the
exact text). Names holding U+001C..U+001F, NEL, NO-BREAK SPACE, a final sigma or a dotted capital I fell between
them, and a second create of such an interaction type was a unique violation (HTTP 500). Now the key is
computed once, in Python (``psa.domain.values.name_key``: NFKC, full case folding, whitespace collapsed), stored
by every writer, and it is what the unique index covers and every lookup compares (docs/decisions.md, "One key
per unique name"):

- ``clients.name_key``: unique per tenant (was: ``client_name`` exactly);
- ``interaction_types.name_key``: unique per tenant (was: the index on ``lower(type_name)``);
- ``statuses.name_key``: unique per tenant and status type (was: ``name`` exactly);
- ``tag_definitions.name_key``: unique per tenant and tagged type (was: ``tag_text`` exactly);
- ``contact_{phone,email}_type_definitions.normalized_label`` now holds the key of ``label`` (was: lower-cased and
  trimmed in Python, with a CHECK of ``lower(btrim(...))`` that a case-folded key need not pass).

Existing rows get their key here. Rows that now share one are resolved or refused:

- tag definitions of one key and tagged type merge into the oldest (``created_at``, then ``tag_id``): its text
  and colours stay, the others' mappings move to it (a record tagged by several of them keeps one mapping, its
  oldest) and the others are deleted;
- clients, interaction types, statuses and custom type labels that share a key are not merged (they carry
  business data): the migration fails, listing them, and changes nothing; rename one of each pair and run it
  again.

A later change to ``name_key`` needs a migration that recomputes the keys in the same way.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

from psa.domain.values import name_key

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# table -> (id column, name column, scope columns after tenant, the columns of the unique constraint replaced;
# None: the unique index ux_interaction_types_tenant_type_name on (tenant, lower(type_name)))
KEYED = {
    "clients": ("client_id", "client_name", (), ("tenant", "client_name")),
    "interaction_types": ("type_id", "type_name", (), None),
    "statuses": ("status_id", "name", ("status_type",), ("tenant", "status_type", "name")),
    "tag_definitions": ("tag_id", "tag_text", ("tagged_type",), ("tenant", "tag_text", "tagged_type")),
}
OLD_TYPE_NAME_INDEX = "ux_interaction_types_tenant_type_name"
LABELS = {
    "contact_phone_type_definitions": "contact_phone_type_id",
    "contact_email_type_definitions": "contact_email_type_id",
}
MERGED = ("tag_definitions",)
BATCH = 5000
SHOWN = 20

# Tag definitions of one (tenant, tagged_type, name_key): the oldest is the keeper.
_TAG_GROUPS = """
  SELECT tenant, tag_id, first_value(tag_id) OVER (PARTITION BY tenant, tagged_type, name_key
                                                   ORDER BY created_at, tag_id) AS keeper
    FROM tag_definitions"""
MERGE_TAGS = (
    # A record tagged by several definitions of one group keeps one mapping: the keeper's, else the oldest.
    f"""WITH groups AS ({_TAG_GROUPS}),
         ranked AS (
           SELECT m.tenant, m.mapping_id,
                  row_number() OVER (PARTITION BY m.tenant, g.keeper, m.tagged_id
                                     ORDER BY (m.tag_id = g.keeper) DESC, m.created_at, m.mapping_id) AS n
             FROM tag_mappings m JOIN groups g ON g.tenant = m.tenant AND g.tag_id = m.tag_id)
       DELETE FROM tag_mappings m USING ranked r WHERE m.tenant = r.tenant AND m.mapping_id = r.mapping_id AND r.n > 1""",
    f"""WITH groups AS ({_TAG_GROUPS})
       UPDATE tag_mappings m SET tag_id = g.keeper FROM groups g
        WHERE m.tenant = g.tenant AND m.tag_id = g.tag_id AND g.tag_id <> g.keeper""",
    f"""WITH groups AS ({_TAG_GROUPS})
       DELETE FROM tag_definitions d USING groups g
        WHERE d.tenant = g.tenant AND d.tag_id = g.tag_id AND g.tag_id <> g.keeper""",
)


def _backfill(conn, table: str, id_column: str, name_column: str, key_column: str) -> None:
    """Store ``name_key(name)`` in ``key_column`` of every row, in batches."""
    rows = conn.execute(sa.text(f"SELECT tenant, {id_column}, {name_column} FROM {table}")).all()
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        conn.execute(
            sa.text(
                f"""UPDATE {table} t SET {key_column} = k.key
                      FROM unnest(CAST(:tenants AS uuid[]), CAST(:ids AS uuid[]), CAST(:keys AS text[]))
                        AS k(tenant, id, key)
                     WHERE t.tenant = k.tenant AND t.{id_column} = k.id"""
            ),
            {
                "tenants": [row[0] for row in batch],
                "ids": [row[1] for row in batch],
                "keys": [name_key(row[2]) for row in batch],
            },
        )


def _collisions(conn, table: str, name_column: str, scope: tuple[str, ...], key_column: str) -> list[str]:
    """One line per group of rows of ``table`` that share a key: tenant, scope and the names."""
    group = ", ".join(("tenant", *scope, key_column))
    result = conn.execute(
        sa.text(
            f"""SELECT tenant, {", ".join(scope) + "," if scope else ""}
                       array_agg({name_column} ORDER BY {name_column}) AS names
                  FROM {table} GROUP BY {group} HAVING count(*) > 1 ORDER BY tenant"""
        )
    )
    lines = []
    for row in result:
        scoped = "".join(f", {column} {row._mapping[column]!r}" for column in scope)
        lines.append(f"{table}: tenant {row.tenant}{scoped}: {', '.join(repr(name) for name in row.names)}")
    return lines


def _unique(table: str, columns: tuple[str, ...] | list[str]) -> str:
    """The name psa.db.schema's naming convention gives a unique constraint."""
    return op.f(f"uq_{table}_{'_'.join(columns)}")


def upgrade() -> None:
    conn = op.get_bind()
    collisions: list[str] = []
    for table, (id_column, name_column, scope, _) in KEYED.items():
        op.add_column(table, sa.Column("name_key", sa.Text(), nullable=True))
        _backfill(conn, table, id_column, name_column, "name_key")
        if table in MERGED:
            for statement in MERGE_TAGS:
                conn.execute(sa.text(statement))
        collisions += _collisions(conn, table, name_column, scope, "name_key")
    for table, id_column in LABELS.items():
        op.drop_constraint(op.f(f"ck_{table}_normalized_label"), table, type_="check")
        op.drop_constraint(_unique(table, ("tenant", "normalized_label")), table, type_="unique")
        _backfill(conn, table, id_column, "label", "normalized_label")
        collisions += _collisions(conn, table, "label", (), "normalized_label")
    if collisions:
        shown = "\n  ".join(collisions[:SHOWN])
        more = f"\n  ... and {len(collisions) - SHOWN} more" if len(collisions) > SHOWN else ""
        raise RuntimeError(
            "migration 0009 stopped, nothing was changed: these names are now the same name (same "
            f"psa.domain.values.name_key); rename all but one in each line and upgrade again:\n  {shown}{more}"
        )
    for table, (_, _, scope, replaced) in KEYED.items():
        op.alter_column(table, "name_key", nullable=False)
        if replaced is None:
            op.drop_index(OLD_TYPE_NAME_INDEX, table_name=table)
        else:
            op.drop_constraint(_unique(table, replaced), table, type_="unique")
        keyed = ("tenant", *scope, "name_key")
        op.create_unique_constraint(_unique(table, keyed), table, list(keyed))
    for table in LABELS:
        op.create_unique_constraint(
            _unique(table, ("tenant", "normalized_label")), table, ["tenant", "normalized_label"]
        )


def downgrade() -> None:
    """Back to the constraints of 0008 (merged tag definitions stay merged). Fails if two interaction types or
    custom labels with different keys have the same ``lower()`` form, which the old constraints refuse."""
    for table, (_, name_column, scope, replaced) in KEYED.items():
        op.drop_constraint(_unique(table, ("tenant", *scope, "name_key")), table, type_="unique")
        op.drop_column(table, "name_key")
        if replaced is None:
            op.create_index(OLD_TYPE_NAME_INDEX, table, ["tenant", sa.text(f"lower({name_column})")], unique=True)
        else:
            op.create_unique_constraint(_unique(table, replaced), table, list(replaced))
    for table in LABELS:
        op.drop_constraint(_unique(table, ("tenant", "normalized_label")), table, type_="unique")
        op.execute(f"UPDATE {table} SET normalized_label = lower(regexp_replace(btrim(label), '\\s+', ' ', 'g'))")
        op.create_unique_constraint(
            _unique(table, ("tenant", "normalized_label")), table, ["tenant", "normalized_label"]
        )
        op.create_check_constraint(
            op.f(f"ck_{table}_normalized_label"), table, "normalized_label = lower(btrim(normalized_label))"
        )
