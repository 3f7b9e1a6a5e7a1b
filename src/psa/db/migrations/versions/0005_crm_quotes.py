"""crm: quotes, quote items and quote activities; completion fields and search indexes on interactions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 08:10:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
GEN_UUID = sa.text("gen_random_uuid()")
JSONB = postgresql.JSONB(astext_type=sa.Text())
QUOTE_STATUSES = (
    "draft",
    "pending_approval",
    "approved",
    "sent",
    "accepted",
    "rejected",
    "expired",
    "converted",
    "cancelled",
    "superseded",
    "archived",
)


def _uuid(name: str, *, nullable: bool = True, default: bool = False) -> sa.Column:
    return sa.Column(name, sa.UUID(), server_default=GEN_UUID if default else None, nullable=nullable)


def _ts(name: str, *, nullable: bool = True, default: bool = True) -> sa.Column:
    return sa.Column(
        name, postgresql.TIMESTAMP(timezone=True), server_default=NOW if default else None, nullable=nullable
    )


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), server_default=sa.text("0"), nullable=False)


def _flag(name: str, default: bool) -> sa.Column:
    return sa.Column(name, sa.Boolean(), server_default=sa.text("true" if default else "false"), nullable=False)


def _tenant_table(name: str, id_column: str, *items: sa.Column | sa.Constraint) -> None:
    """A tenant-owned table: ``tenant`` and ``id_column`` lead, primary key (tenant, id), tenant FK with cascade."""
    op.create_table(
        name,
        _uuid("tenant", nullable=False),
        _uuid(id_column, nullable=False, default=True),
        *items,
        sa.ForeignKeyConstraint(
            ["tenant"], ["tenants.tenant"], name=op.f(f"fk_{name}_tenant_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant", id_column, name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    statuses = ", ".join(f"'{s}'" for s in QUOTE_STATUSES)
    _tenant_table(
        "quotes",
        "quote_id",
        sa.Column("quote_number", sa.Text(), nullable=False),
        _uuid("client_id", nullable=False),
        _uuid("contact_id"),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="draft", nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        _ts("quote_date", nullable=False, default=False),
        _ts("valid_until", nullable=False, default=False),
        sa.Column("po_number", sa.String(length=255), nullable=True),
        sa.Column("internal_notes", sa.Text(), nullable=True),
        sa.Column("client_notes", sa.Text(), nullable=True),
        sa.Column("terms_and_conditions", sa.Text(), nullable=True),
        sa.Column("currency_code", sa.String(length=3), server_default="USD", nullable=False),
        sa.Column("tax_source", sa.Text(), server_default="internal", nullable=False),
        _flag("is_template", False),
        _money("subtotal"),
        _money("discount_total"),
        _money("tax"),
        _money("total_amount"),
        _ts("sent_at", default=False),
        _uuid("converted_contract_id"),
        _uuid("converted_invoice_id"),
        _uuid("created_by"),
        _uuid("updated_by"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.CheckConstraint(f"status IN ({statuses})", name=op.f("ck_quotes_status")),
        sa.CheckConstraint("valid_until >= quote_date", name=op.f("ck_quotes_valid_range")),
        sa.UniqueConstraint("tenant", "quote_number", name=op.f("uq_quotes_tenant_quote_number")),
        sa.ForeignKeyConstraint(
            ["tenant", "client_id"], ["clients.tenant", "clients.client_id"], name="fk_quotes_client"
        ),
        sa.ForeignKeyConstraint(
            ["tenant", "contact_id"], ["contacts.tenant", "contacts.contact_name_id"], name="fk_quotes_contact"
        ),
    )
    op.create_index("ix_quotes_client", "quotes", ["tenant", "client_id", "quote_date"])
    op.create_index("ix_quotes_quote_date", "quotes", ["tenant", "quote_date"])

    _tenant_table(
        "quote_items",
        "quote_item_id",
        _uuid("quote_id", nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        _money("unit_price"),
        _money("total_price"),
        _money("net_amount"),
        _money("tax_amount"),
        sa.Column("unit_of_measure", sa.Text(), nullable=True),
        sa.Column("display_order", sa.Integer(), nullable=False),
        sa.Column("phase", sa.Text(), nullable=True),
        _flag("is_optional", False),
        _flag("is_selected", True),
        _flag("is_recurring", False),
        sa.Column("billing_frequency", sa.Text(), nullable=True),
        sa.Column("billing_method", sa.Text(), nullable=True),
        _flag("is_discount", False),
        sa.Column("discount_type", sa.Text(), nullable=True),
        sa.Column("discount_percentage", sa.Integer(), nullable=True),
        _uuid("applies_to_item_id"),
        _uuid("applies_to_service_id"),
        _flag("is_taxable", True),
        sa.Column("tax_region", sa.Text(), nullable=True),
        sa.Column("tax_rate", sa.Integer(), nullable=True),
        _uuid("location_id"),
        sa.Column("cost", sa.BigInteger(), nullable=True),
        sa.Column("cost_currency", sa.String(length=3), nullable=True),
        _uuid("created_by"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_quote_items_quantity")),
        sa.ForeignKeyConstraint(
            ["tenant", "quote_id"],
            ["quotes.tenant", "quotes.quote_id"],
            name="fk_quote_items_quote",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_quote_items_quote", "quote_items", ["tenant", "quote_id", "display_order"])

    _tenant_table(
        "quote_activities",
        "activity_id",
        _uuid("quote_id", nullable=False),
        sa.Column("activity_type", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _uuid("performed_by"),
        sa.Column("metadata", JSONB, nullable=True),
        _ts("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant", "quote_id"],
            ["quotes.tenant", "quotes.quote_id"],
            name="fk_quote_activities_quote",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_quote_activities_quote", "quote_activities", ["tenant", "quote_id", "created_at"])

    # Beyond the reference (Odoo's "mark done"): a completed activity keeps when, by whom and the feedback.
    op.add_column("interactions", _ts("completed_at", default=False))
    op.add_column("interactions", _uuid("completed_by"))
    op.add_column("interactions", sa.Column("feedback", sa.Text(), nullable=True))
    # crm.find_activities: by type and status, by owner, by date alone; newest first.
    op.create_index(
        "ix_interactions_type_status", "interactions", ["tenant", "type_id", "status_id", "interaction_date"]
    )
    op.create_index("ix_interactions_user", "interactions", ["tenant", "user_id", "interaction_date"])
    op.create_index("ix_interactions_date", "interactions", ["tenant", "interaction_date"])


def downgrade() -> None:
    op.drop_index("ix_interactions_date", table_name="interactions")
    op.drop_index("ix_interactions_user", table_name="interactions")
    op.drop_index("ix_interactions_type_status", table_name="interactions")
    for column in ("feedback", "completed_by", "completed_at"):
        op.drop_column("interactions", column)
    for table in ("quote_activities", "quote_items", "quotes"):
        op.drop_table(table)
