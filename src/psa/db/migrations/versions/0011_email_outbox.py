"""email outbox: one row per email psa sends, written in the transaction of the change that causes it and delivered
after commit (docs/architecture.md, "Email outbox")

- ``email_id`` is derived from the row's business key (``source_key``: the provisioning workflow id and the kind
  of email, or the action invocation's key and the message's index), so a retry addresses the same row and the
  message keeps its ``Message-ID``.
- ``message`` is the rendered RFC 5322 message; when ``sealed`` it is AES-256-GCM ciphertext under the settings'
  codec key (a welcome email holds a temporary password, which is never stored in the clear).
- ``status``: ``pending`` -> ``sending`` (claimed, ``attempts`` + 1, leased until ``locked_until``) -> ``sent``,
  or ``failed`` with ``last_error``, retried at ``next_attempt_at`` (NULL: no further automatic attempt).
- Row-level security like every tenant table (``psa_enable_tenant_rls``); the API role's grants come from the
  default privileges of 0006.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
JSONB = postgresql.JSONB(astext_type=sa.Text())
EMAIL_STATUSES = ("pending", "sending", "sent", "failed")


def _ts(name: str, *, nullable: bool = True, default: bool = True) -> sa.Column:
    return sa.Column(
        name, postgresql.TIMESTAMP(timezone=True), server_default=NOW if default else None, nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "email_outbox",
        sa.Column("tenant", sa.UUID(), nullable=False),
        sa.Column("email_id", sa.UUID(), nullable=False),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("recipients", JSONB, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("sealed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        _ts("next_attempt_at"),
        _ts("locked_until", default=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _ts("sent_at", default=False),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in EMAIL_STATUSES) + ")", name=op.f("ck_email_outbox_status")
        ),
        sa.ForeignKeyConstraint(
            ["tenant"], ["tenants.tenant"], name=op.f("fk_email_outbox_tenant_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant", "email_id", name=op.f("pk_email_outbox")),
    )
    # The sender's queue: unsent rows in creation order.
    op.create_index(
        "ix_email_outbox_unsent", "email_outbox", ["created_at"], postgresql_where=sa.text("status <> 'sent'")
    )
    op.execute("SELECT psa_enable_tenant_rls()")


def downgrade() -> None:
    op.drop_table("email_outbox")
