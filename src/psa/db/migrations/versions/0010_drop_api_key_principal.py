"""Drop ``psa_api_key_principal``; a client's billing contact is cleared when that contact is deleted

- ``psa_api_key_principal(hash)`` (0006) was kept for API processes of the previous release during a rolling
  deploy after ``psa_api_authenticate(hash, permissions)`` (0008) took over; nothing calls it any more. The
  downgrade recreates it as 0006 made it, with the same grants.
- ``clients.billing_contact_id`` had no foreign key, so deleting that contact left a dangling id. It now refers
  to ``contacts (tenant, contact_name_id)`` with ``ON DELETE SET NULL (billing_contact_id)``: the database
  clears the id, and only it (the tenant column stays), in the transaction of the delete (docs/decisions.md,
  "Actions", contacts). Ids that already dangle are cleared first. PostgreSQL 15 or later (the column list of
  ``SET NULL``).
- Indexes on ``clients (tenant, billing_contact_id)`` and ``quotes (tenant, contact_id)``, so the delete of a
  contact finds what refers to it without scanning the tenant's clients and quotes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

API_ROLE = "psa_api"

KEY_PRINCIPAL = """
CREATE OR REPLACE FUNCTION psa_api_key_principal(p_key_hash text)
RETURNS TABLE (tenant uuid, user_id uuid, key_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$
  SELECT k.tenant, k.user_id, k.key_id
    FROM public.api_keys k
    JOIN public.users u ON u.tenant = k.tenant AND u.user_id = k.user_id
   WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL AND NOT u.is_inactive AND u.user_type = 'internal'
$fn$
"""


def upgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS psa_api_key_principal(text)")
    op.execute(
        """UPDATE clients c SET billing_contact_id = NULL
            WHERE billing_contact_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM contacts k
                               WHERE k.tenant = c.tenant AND k.contact_name_id = c.billing_contact_id)"""
    )
    op.create_foreign_key(
        "fk_clients_billing_contact",
        "clients",
        "contacts",
        ["tenant", "billing_contact_id"],
        ["tenant", "contact_name_id"],
        ondelete="SET NULL (billing_contact_id)",
    )
    op.create_index(
        "ix_clients_billing_contact",
        "clients",
        ["tenant", "billing_contact_id"],
        postgresql_where=sa.text("billing_contact_id IS NOT NULL"),
    )
    op.create_index(
        "ix_quotes_contact", "quotes", ["tenant", "contact_id"], postgresql_where=sa.text("contact_id IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_quotes_contact", table_name="quotes")
    op.drop_index("ix_clients_billing_contact", table_name="clients")
    op.drop_constraint("fk_clients_billing_contact", "clients", type_="foreignkey")
    op.execute(KEY_PRINCIPAL)
    op.execute("REVOKE ALL ON FUNCTION psa_api_key_principal(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION psa_api_key_principal(text) TO {API_ROLE}")
