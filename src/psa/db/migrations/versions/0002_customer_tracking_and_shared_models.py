"""shared models and customer tracking: custom contact types, client tax rates and email suffixes,
cross-table contact email uniqueness, one customer client per tracked tenant

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 06:19:08.870698
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
GEN_UUID = sa.text("gen_random_uuid()")

# A primary email may not equal any additional email of the tenant, and vice versa (reference triggers
# trg_check_contact_*_email_uniqueness). Both triggers take the same transaction advisory lock on
# (tenant, normalised email) before checking, so two concurrent inserts of one address cannot both pass.
# BEFORE triggers do not see generated columns yet, so they normalise NEW themselves.
TRIGGERS = """
CREATE FUNCTION check_contact_primary_email_uniqueness() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.email IS NULL THEN
    RETURN NEW;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended(NEW.tenant::text || ':' || lower(btrim(NEW.email)), 0));
  IF EXISTS (SELECT 1 FROM contact_additional_email_addresses a
              WHERE a.tenant = NEW.tenant AND a.normalized_email_address = lower(btrim(NEW.email))) THEN
    RAISE EXCEPTION 'A contact email already exists as an additional email address in this tenant'
      USING ERRCODE = 'unique_violation', CONSTRAINT = 'contact_email_is_additional_email';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER trg_check_contact_primary_email_uniqueness
  BEFORE INSERT OR UPDATE OF email ON contacts
  FOR EACH ROW EXECUTE FUNCTION check_contact_primary_email_uniqueness();

CREATE FUNCTION check_contact_additional_email_uniqueness() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(NEW.tenant::text || ':' || lower(btrim(NEW.email_address)), 0));
  IF EXISTS (SELECT 1 FROM contacts c
              WHERE c.tenant = NEW.tenant AND c.email = lower(btrim(NEW.email_address))) THEN
    RAISE EXCEPTION 'An additional email address already exists as a contact primary email in this tenant'
      USING ERRCODE = 'unique_violation', CONSTRAINT = 'additional_email_is_contact_email';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER trg_check_contact_additional_email_uniqueness
  BEFORE INSERT OR UPDATE OF email_address ON contact_additional_email_addresses
  FOR EACH ROW EXECUTE FUNCTION check_contact_additional_email_uniqueness();
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS trg_check_contact_additional_email_uniqueness ON contact_additional_email_addresses;
DROP FUNCTION IF EXISTS check_contact_additional_email_uniqueness();
DROP TRIGGER IF EXISTS trg_check_contact_primary_email_uniqueness ON contacts;
DROP FUNCTION IF EXISTS check_contact_primary_email_uniqueness();
"""


def _type_definitions(name: str, id_column: str) -> None:
    op.create_table(
        name,
        sa.Column("tenant", sa.UUID(), nullable=False),
        sa.Column(id_column, sa.UUID(), server_default=GEN_UUID, nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("normalized_label", sa.Text(), nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", postgresql.TIMESTAMP(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "normalized_label = lower(btrim(normalized_label))", name=op.f(f"ck_{name}_normalized_label")
        ),
        sa.ForeignKeyConstraint(
            ["tenant"], ["tenants.tenant"], name=op.f(f"fk_{name}_tenant_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant", id_column, name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("tenant", "normalized_label", name=op.f(f"uq_{name}_tenant_normalized_label")),
    )


def upgrade() -> None:
    _type_definitions("contact_email_type_definitions", "contact_email_type_id")
    _type_definitions("contact_phone_type_definitions", "contact_phone_type_id")
    op.create_table(
        "client_email_settings",
        sa.Column("tenant", sa.UUID(), nullable=False),
        sa.Column("client_id", sa.UUID(), nullable=False),
        sa.Column("email_suffix", sa.Text(), nullable=False),
        sa.Column("self_registration_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", postgresql.TIMESTAMP(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant", "client_id"],
            ["clients.tenant", "clients.client_id"],
            name=op.f("fk_client_email_settings_tenant_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant", "client_id", "email_suffix", name=op.f("pk_client_email_settings")),
    )
    op.create_table(
        "client_tax_rates",
        sa.Column("tenant", sa.UUID(), nullable=False),
        sa.Column("client_tax_rates_id", sa.UUID(), server_default=GEN_UUID, nullable=False),
        sa.Column("client_id", sa.UUID(), nullable=False),
        sa.Column("tax_rate_id", sa.UUID(), nullable=False),
        sa.Column("location_id", sa.UUID(), nullable=True),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", postgresql.TIMESTAMP(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant", "client_id"],
            ["clients.tenant", "clients.client_id"],
            name=op.f("fk_client_tax_rates_tenant_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant", "tax_rate_id"],
            ["tax_rates.tenant", "tax_rates.tax_rate_id"],
            name="fk_client_tax_rates_tax_rate",
        ),
        sa.PrimaryKeyConstraint("tenant", "client_tax_rates_id", name=op.f("pk_client_tax_rates")),
        sa.UniqueConstraint(
            "tenant", "client_id", "tax_rate_id", name=op.f("uq_client_tax_rates_tenant_client_id_tax_rate_id")
        ),
    )
    op.create_foreign_key(
        "fk_contact_additional_emails_custom_type",
        "contact_additional_email_addresses",
        "contact_email_type_definitions",
        ["tenant", "custom_email_type_id"],
        ["tenant", "contact_email_type_id"],
    )
    op.create_foreign_key(
        "fk_contact_phone_numbers_custom_type",
        "contact_phone_numbers",
        "contact_phone_type_definitions",
        ["tenant", "custom_phone_type_id"],
        ["tenant", "contact_phone_type_id"],
    )
    op.create_foreign_key(
        "fk_contacts_primary_email_custom_type",
        "contacts",
        "contact_email_type_definitions",
        ["tenant", "primary_email_custom_type_id"],
        ["tenant", "contact_email_type_id"],
    )
    op.create_foreign_key(
        "fk_users_contact",
        "users",
        "contacts",
        ["tenant", "contact_id"],
        ["tenant", "contact_name_id"],
        ondelete="CASCADE",
    )
    op.create_check_constraint("ck_contacts_email_normalized", "contacts", "email = lower(btrim(email))")
    # One customer client per tracked tenant (properties.tenant_id holds the tracked tenant's id).
    op.execute(
        "CREATE UNIQUE INDEX ux_clients_customer_tenant_id ON clients (tenant, (properties ->> 'tenant_id')) "
        "WHERE properties ->> 'tenant_id' IS NOT NULL"
    )
    op.execute(TRIGGERS)


def downgrade() -> None:
    op.execute(DROP_TRIGGERS)
    op.execute("DROP INDEX IF EXISTS ux_clients_customer_tenant_id")
    op.drop_constraint("ck_contacts_email_normalized", "contacts", type_="check")
    op.drop_constraint("fk_users_contact", "users", type_="foreignkey")
    op.drop_constraint("fk_contacts_primary_email_custom_type", "contacts", type_="foreignkey")
    op.drop_constraint("fk_contact_phone_numbers_custom_type", "contact_phone_numbers", type_="foreignkey")
    op.drop_constraint(
        "fk_contact_additional_emails_custom_type", "contact_additional_email_addresses", type_="foreignkey"
    )
    op.drop_table("client_tax_rates")
    op.drop_table("client_email_settings")
    op.drop_table("contact_phone_type_definitions")
    op.drop_table("contact_email_type_definitions")
