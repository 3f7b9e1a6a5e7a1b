"""contacts.* actions: ticket comments, portal invitations, survey invitations and responses, asset associations
(the records contacts.delete checks or cleans up), and the search indexes of contacts.search / contacts.find
(pg_trgm with btree_gin for names, emails and phone digits; last-7 / last-10 phone digit expressions)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
GEN_UUID = sa.text("gen_random_uuid()")

# (index, table, column) of the trigram indexes; each leads with tenant (btree_gin).
TRIGRAM_INDEXES = (
    ("ix_contacts_full_name_trgm", "contacts", "full_name"),
    ("ix_contacts_email_trgm", "contacts", "email"),
    ("ix_contact_additional_email_addresses_trgm", "contact_additional_email_addresses", "normalized_email_address"),
    ("ix_contact_phone_numbers_trgm", "contact_phone_numbers", "normalized_phone_number"),
)
PHONE_SUFFIX_INDEXES = (("ix_contact_phone_numbers_last10", 10), ("ix_contact_phone_numbers_last7", 7))


def _uuid(name: str, *, nullable: bool = True, default: bool = False) -> sa.Column:
    return sa.Column(name, sa.UUID(), server_default=GEN_UUID if default else None, nullable=nullable)


def _ts(name: str, *, nullable: bool = True, default: bool = True) -> sa.Column:
    return sa.Column(
        name, postgresql.TIMESTAMP(timezone=True), server_default=NOW if default else None, nullable=nullable
    )


def _fk(table: str, column: str, parent: str, parent_column: str, *, cascade: bool = False) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant", column],
        [f"{parent}.tenant", f"{parent}.{parent_column}"],
        name=op.f(f"fk_{table}_tenant_{column}_{parent}"),
        ondelete="CASCADE" if cascade else None,
    )


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant"], ["tenants.tenant"], name=op.f(f"fk_{table}_tenant_tenants"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    for name, table, column in TRIGRAM_INDEXES:
        op.create_index(
            name,
            table,
            ["tenant", column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
            postgresql_with={"fastupdate": "off"},  # no pending list for searches to scan (see schema.py)
        )
    for name, digits in PHONE_SUFFIX_INDEXES:
        op.create_index(name, "contact_phone_numbers", ["tenant", sa.text(f"right(normalized_phone_number, {digits})")])

    op.create_table(
        "comments",
        _uuid("tenant", nullable=False),
        _uuid("comment_id", nullable=False, default=True),
        _uuid("ticket_id", nullable=False),
        _uuid("user_id"),
        _uuid("contact_id"),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("author_type", sa.Text(), server_default="internal", nullable=False),
        sa.Column("is_internal", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_resolution", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("tenant", "comment_id", name=op.f("pk_comments")),
        _tenant_fk("comments"),
        _fk("comments", "ticket_id", "tickets", "ticket_id", cascade=True),
        _fk("comments", "user_id", "users", "user_id"),
        _fk("comments", "contact_id", "contacts", "contact_name_id"),
        sa.CheckConstraint("author_type IN ('internal', 'client', 'system')", name=op.f("ck_comments_author_type")),
    )
    op.create_index("ix_comments_ticket", "comments", ["tenant", "ticket_id", "created_at"])
    op.create_index("ix_comments_contact", "comments", ["tenant", "contact_id"])

    op.create_table(
        "portal_invitations",
        _uuid("tenant", nullable=False),
        _uuid("invitation_id", nullable=False, default=True),
        _uuid("contact_id", nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        _ts("expires_at", nullable=False, default=False),
        _ts("used_at", default=False),
        _uuid("created_by"),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("tenant", "invitation_id", name=op.f("pk_portal_invitations")),
        sa.UniqueConstraint("tenant", "token_hash", name=op.f("uq_portal_invitations_tenant_token_hash")),
        _tenant_fk("portal_invitations"),
        _fk("portal_invitations", "contact_id", "contacts", "contact_name_id"),
        _fk("portal_invitations", "created_by", "users", "user_id"),
    )
    op.create_index("ix_portal_invitations_contact", "portal_invitations", ["tenant", "contact_id"])

    op.create_table(
        "survey_invitations",
        _uuid("tenant", nullable=False),
        _uuid("invitation_id", nullable=False, default=True),
        _uuid("contact_id"),
        _uuid("client_id"),
        _uuid("ticket_id"),
        sa.Column("token_hash", sa.Text(), nullable=False),
        _ts("sent_at", nullable=False),
        _ts("expires_at", default=False),
        _ts("responded_at", default=False),
        sa.PrimaryKeyConstraint("tenant", "invitation_id", name=op.f("pk_survey_invitations")),
        sa.UniqueConstraint("tenant", "token_hash", name=op.f("uq_survey_invitations_tenant_token_hash")),
        _tenant_fk("survey_invitations"),
        _fk("survey_invitations", "contact_id", "contacts", "contact_name_id"),
        _fk("survey_invitations", "client_id", "clients", "client_id"),
        _fk("survey_invitations", "ticket_id", "tickets", "ticket_id"),
    )
    op.create_index("ix_survey_invitations_contact", "survey_invitations", ["tenant", "contact_id"])

    op.create_table(
        "survey_responses",
        _uuid("tenant", nullable=False),
        _uuid("response_id", nullable=False, default=True),
        _uuid("invitation_id"),
        _uuid("contact_id"),
        _uuid("client_id"),
        _uuid("ticket_id"),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text()),
        _ts("submitted_at", nullable=False),
        sa.PrimaryKeyConstraint("tenant", "response_id", name=op.f("pk_survey_responses")),
        _tenant_fk("survey_responses"),
        _fk("survey_responses", "invitation_id", "survey_invitations", "invitation_id"),
        _fk("survey_responses", "contact_id", "contacts", "contact_name_id"),
        _fk("survey_responses", "client_id", "clients", "client_id"),
        _fk("survey_responses", "ticket_id", "tickets", "ticket_id"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_survey_responses_rating")),
    )
    op.create_index("ix_survey_responses_contact", "survey_responses", ["tenant", "contact_id"])

    op.create_table(
        "asset_associations",
        _uuid("tenant", nullable=False),
        _uuid("asset_id", nullable=False),
        _uuid("entity_id", nullable=False),
        sa.Column("entity_type", sa.Text(), nullable=False),
        sa.Column("relationship_type", sa.Text(), server_default="owner", nullable=False),
        _uuid("created_by"),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("tenant", "asset_id", "entity_id", "entity_type", name=op.f("pk_asset_associations")),
        _tenant_fk("asset_associations"),
        sa.CheckConstraint(
            "entity_type IN ('client', 'contact', 'ticket', 'project')", name=op.f("ck_asset_associations_entity_type")
        ),
    )
    op.create_index("ix_asset_associations_entity", "asset_associations", ["tenant", "entity_type", "entity_id"])


def downgrade() -> None:
    for table in ("asset_associations", "survey_responses", "survey_invitations", "portal_invitations", "comments"):
        op.drop_table(table)
    for name, _ in PHONE_SUFFIX_INDEXES:
        op.drop_index(name, table_name="contact_phone_numbers")
    for name, table, _ in TRIGRAM_INDEXES:
        op.drop_index(name, table_name=table)
    # The extensions stay: dropping them could break objects created outside these migrations.
