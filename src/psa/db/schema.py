"""Table metadata (SQLAlchemy Core). Column names follow the reference schema.

Conventions (docs/architecture.md, "Data model"): every tenant-owned table has ``tenant uuid not null`` as
the leading column of its primary key, of every unique constraint and of every foreign key, so Citus can
distribute by tenant and a cross-tenant reference cannot be expressed. Deviations from the reference are
commented where they fix one of its defects (docs/decisions.md).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP, UUID

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

NOW = text("CURRENT_TIMESTAMP")
GEN_UUID = text("gen_random_uuid()")


def _uuid(name: str, *, nullable: bool = True, default: bool = False) -> Column:
    return Column(name, UUID(as_uuid=True), nullable=nullable, server_default=GEN_UUID if default else None)


def _ts(name: str, *, nullable: bool = True, default: bool = True) -> Column:
    return Column(name, TIMESTAMP(timezone=True), nullable=nullable, server_default=NOW if default else None)


def _name_key(of: str) -> Column:
    """The comparison key of the name column ``of`` (psa.domain.values.name_key, computed by the writer): the
    column the unique index of the name covers and lookups by name compare with. ``info["key_of"]`` names
    ``of``, the field a violation of that index is reported on (``constraint_fields``)."""
    return Column("name_key", Text, nullable=False, info={"key_of": of})


def _tenant_fk(*, cascade: bool = True) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant"], ["tenants.tenant"], ondelete="CASCADE" if cascade else None)


tenants = Table(
    "tenants",
    metadata,
    _uuid("tenant", nullable=False, default=True),
    Column("client_name", Text, nullable=False),
    # Beyond the reference: a unique slug, the business key of provisioning (workflow id tenant-creation-<slug>).
    Column("slug", Text, nullable=False),
    Column("phone_number", Text),
    Column("email", Text, nullable=False),
    Column("industry", Text),
    _ts("created_at"),
    _ts("updated_at"),
    Column("plan", Text),
    Column("tax_id_number", String(255)),
    Column("licensed_user_count", Integer),
    Column("last_license_update", TIMESTAMP(timezone=True)),
    Column("billing_source", Text, nullable=False, server_default="manual"),
    Column("product_code", Text, nullable=False, server_default="psa"),
    Column("suspended_at", TIMESTAMP(timezone=True)),
    Column("suspended_reason", Text),
    PrimaryKeyConstraint("tenant"),
    UniqueConstraint("slug"),
    CheckConstraint("product_code IN ('psa', 'algadesk')", name="product_code"),
    CheckConstraint("billing_source IN ('stripe', 'apple_iap', 'manual')", name="billing_source"),
)

clients = Table(
    "clients",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("client_id", nullable=False, default=True),
    Column("client_name", Text, nullable=False),
    _name_key("client_name"),
    Column("url", Text),
    Column("properties", JSONB),
    Column("billing_type", Text),
    Column("payment_terms", Text),
    Column("credit_limit", BigInteger),
    Column("preferred_payment_method", Text),
    Column("auto_invoice", Boolean, server_default=text("false")),
    Column("invoice_delivery_method", Text),
    _ts("created_at"),
    _ts("updated_at"),
    Column("is_inactive", Boolean, nullable=False, server_default=text("false")),
    Column("client_type", Text, nullable=False, server_default="company"),
    Column("is_tax_exempt", Boolean, nullable=False, server_default=text("false")),
    Column("tax_exemption_certificate", String(255)),
    Column("tax_id_number", String(255)),
    Column("notes", Text),
    Column("billing_cycle", Text, nullable=False, server_default="monthly"),
    Column("timezone", String(255)),
    _uuid("notes_document_id"),
    _uuid("billing_contact_id"),
    Column("billing_email", String(255)),
    Column("region_code", String(255)),
    _uuid("account_manager_id"),
    Column("default_currency_code", String(3), nullable=False, server_default="USD"),
    Column("lifecycle_status", Text, nullable=False, server_default="active"),
    PrimaryKeyConstraint("tenant", "client_id"),
    # Client names are unique per tenant by their key (the reference: exactly as written).
    UniqueConstraint("tenant", "name_key"),
    _tenant_fk(),
    CheckConstraint("client_type IN ('company', 'individual')", name="client_type"),
    CheckConstraint(
        "billing_cycle IN ('weekly', 'bi-weekly', 'monthly', 'quarterly', 'semi-annually', 'annually')",
        name="billing_cycle",
    ),
    CheckConstraint("lifecycle_status IN ('prospect', 'active', 'former')", name="lifecycle_status"),
    # Beyond the reference: deleting the billing contact clears the reference, and only it (docs/decisions.md,
    # "Actions"). use_alter: contacts refer to clients too, so one of the two keys is added after both tables.
    ForeignKeyConstraint(
        ["tenant", "billing_contact_id"],
        ["contacts.tenant", "contacts.contact_name_id"],
        name="fk_clients_billing_contact",
        ondelete="SET NULL (billing_contact_id)",
        use_alter=True,
    ),
    Index(
        "ix_clients_billing_contact",
        "tenant",
        "billing_contact_id",
        postgresql_where=text("billing_contact_id IS NOT NULL"),
    ),
    # Beyond the reference: one customer client per tracked tenant in the management tenant, keyed by the
    # tracked tenant's id (the reference stored its name).
    Index(
        "ux_clients_customer_tenant_id",
        "tenant",
        text("(properties ->> 'tenant_id')"),
        unique=True,
        postgresql_where=text("properties ->> 'tenant_id' IS NOT NULL"),
        info={"fields": ("properties.tenant_id",)},
    ),
)

client_locations = Table(
    "client_locations",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("location_id", nullable=False, default=True),
    _uuid("client_id", nullable=False),
    Column("location_name", String(255)),
    Column("address_line1", String(255), nullable=False),
    Column("address_line2", String(255)),
    Column("address_line3", String(255)),
    Column("city", String(255), nullable=False),
    Column("state_province", String(255)),
    Column("postal_code", String(255)),
    Column("country_code", String(255), nullable=False),
    Column("country_name", String(255), nullable=False),
    Column("region_code", String(255)),
    Column("is_billing_address", Boolean, server_default=text("false")),
    Column("is_shipping_address", Boolean, server_default=text("false")),
    Column("is_default", Boolean, server_default=text("false")),
    Column("phone", String(255)),
    Column("fax", String(255)),
    Column("email", String(255)),
    Column("notes", Text),
    Column("is_active", Boolean, server_default=text("true")),
    _ts("created_at"),
    _ts("updated_at"),
    PrimaryKeyConstraint("tenant", "location_id"),
    ForeignKeyConstraint(["tenant", "client_id"], ["clients.tenant", "clients.client_id"], ondelete="CASCADE"),
    Index(
        "ux_client_locations_default_per_client",
        "tenant",
        "client_id",
        unique=True,
        postgresql_where=text("is_default = true"),
    ),
)

tenant_companies = Table(
    "tenant_companies",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("client_id", nullable=False),
    Column("is_default", Boolean, nullable=False, server_default=text("false")),
    _ts("deleted_at", default=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "client_id"),
    _tenant_fk(),
    ForeignKeyConstraint(["tenant", "client_id"], ["clients.tenant", "clients.client_id"], ondelete="CASCADE"),
    Index("ux_tenant_companies_default", "tenant", unique=True, postgresql_where=text("is_default = true")),
)

users = Table(
    "users",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("user_id", nullable=False, default=True),
    Column("username", Text, nullable=False),
    Column("hashed_password", Text, nullable=False),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("email", Text, nullable=False),
    Column("auth_method", Text),
    _ts("created_at"),
    _ts("updated_at"),
    Column("two_factor_enabled", Boolean, server_default=text("false")),
    Column("is_inactive", Boolean, nullable=False, server_default=text("false")),
    Column("user_type", Text, nullable=False, server_default="internal"),
    _uuid("contact_id"),
    Column("phone", String(255)),
    Column("timezone", String(255)),
    _ts("last_login_at", default=False),
    _uuid("reports_to"),
    # Beyond the reference: the temporary credential must be replaced at first login.
    Column("must_change_password", Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("tenant", "user_id"),
    UniqueConstraint("tenant", "email", "user_type"),
    _tenant_fk(),
    # A client-portal user's contact; deleting the contact deletes its portal login.
    ForeignKeyConstraint(
        ["tenant", "contact_id"],
        ["contacts.tenant", "contacts.contact_name_id"],
        ondelete="CASCADE",
        name="fk_users_contact",
    ),
    CheckConstraint("user_type IN ('internal', 'client')", name="user_type"),
    Index("ix_users_lower_email", text("lower(email)")),
)

roles = Table(
    "roles",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("role_id", nullable=False, default=True),
    Column("role_name", Text, nullable=False),
    Column("description", Text),
    _ts("created_at"),
    _ts("updated_at"),
    Column("msp", Boolean, nullable=False, server_default=text("true")),
    Column("client", Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("tenant", "role_id"),
    UniqueConstraint("tenant", "role_name", "msp", "client"),
    _tenant_fk(),
)

permissions = Table(
    "permissions",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("permission_id", nullable=False, default=True),
    Column("resource", Text, nullable=False),
    Column("action", Text, nullable=False),
    _ts("created_at"),
    Column("msp", Boolean, nullable=False, server_default=text("true")),
    Column("client", Boolean, nullable=False, server_default=text("false")),
    Column("description", Text),
    PrimaryKeyConstraint("tenant", "permission_id"),
    UniqueConstraint("tenant", "resource", "action", "msp", "client"),
    _tenant_fk(),
)

role_permissions = Table(
    "role_permissions",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("role_id", nullable=False),
    _uuid("permission_id", nullable=False),
    _ts("created_at"),
    PrimaryKeyConstraint("tenant", "role_id", "permission_id"),
    ForeignKeyConstraint(["tenant", "role_id"], ["roles.tenant", "roles.role_id"], ondelete="CASCADE"),
    ForeignKeyConstraint(
        ["tenant", "permission_id"], ["permissions.tenant", "permissions.permission_id"], ondelete="CASCADE"
    ),
)

user_roles = Table(
    "user_roles",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("user_id", nullable=False),
    _uuid("role_id", nullable=False),
    _ts("created_at"),
    PrimaryKeyConstraint("tenant", "user_id", "role_id"),
    ForeignKeyConstraint(["tenant", "user_id"], ["users.tenant", "users.user_id"], ondelete="CASCADE"),
    ForeignKeyConstraint(["tenant", "role_id"], ["roles.tenant", "roles.role_id"], ondelete="CASCADE"),
)

tenant_settings = Table(
    "tenant_settings",
    metadata,
    _uuid("tenant", nullable=False),
    Column("onboarding_completed", Boolean, server_default=text("false")),
    _ts("onboarding_completed_at", default=False),
    Column("onboarding_skipped", Boolean, server_default=text("false")),
    Column("onboarding_data", JSONB),
    Column("settings", JSONB),
    _ts("created_at"),
    _ts("updated_at"),
    Column("ticket_display_settings", JSONB),
    Column("default_tax_source", String(20), server_default="internal"),
    Column("allow_external_tax_override", Boolean, server_default=text("false")),
    PrimaryKeyConstraint("tenant"),
    _tenant_fk(),
)

tenant_email_settings = Table(
    "tenant_email_settings",
    metadata,
    # Reference: serial id and no unique tenant, so a re-run added a second row. One row per tenant.
    _uuid("tenant", nullable=False),
    Column("default_from_domain", String(255)),
    Column("custom_domains", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("email_provider", Text, nullable=False, server_default="smtp"),
    Column("provider_configs", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("fallback_enabled", Boolean, server_default=text("true")),
    Column("tracking_enabled", Boolean, server_default=text("false")),
    Column("max_daily_emails", Integer),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Column("ticketing_from_email", String(255)),
    Column("ticketing_from_name", String(255)),
    PrimaryKeyConstraint("tenant"),
    _tenant_fk(),
    CheckConstraint("email_provider IN ('smtp', 'resend', 'hybrid', 'microsoft')", name="email_provider"),
)

tax_regions = Table(
    "tax_regions",
    metadata,
    _uuid("tenant", nullable=False),
    Column("region_code", String(255), nullable=False),
    Column("region_name", Text, nullable=False),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "region_code"),
    _tenant_fk(),
)

tax_rates = Table(
    "tax_rates",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("tax_rate_id", nullable=False, default=True),
    Column("tax_percentage", Numeric(10, 4), nullable=False),
    Column("description", Text),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Column("tax_type", Text),
    Column("country_code", String(2)),
    Column("is_reverse_charge_applicable", Boolean, server_default=text("false")),
    Column("is_composite", Boolean, server_default=text("false")),
    Column("is_active", Boolean, server_default=text("true")),
    Column("conditions", JSONB),
    Column("region_code", String(255), nullable=False),
    Column("currency_code", String(3)),
    PrimaryKeyConstraint("tenant", "tax_rate_id"),
    _tenant_fk(),
    # NO ACTION (checked at statement end), not the reference's RESTRICT, so deleting a tenant cascades.
    ForeignKeyConstraint(["tenant", "region_code"], ["tax_regions.tenant", "tax_regions.region_code"]),
    CheckConstraint("tax_type IN ('VAT', 'GST', 'Sales Tax')", name="tax_type"),
)

client_tax_settings = Table(
    "client_tax_settings",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("client_id", nullable=False),
    Column("is_reverse_charge_applicable", Boolean, server_default=text("false")),
    Column("tax_source_override", String(20)),
    _uuid("billing_profile_id"),
    PrimaryKeyConstraint("tenant", "client_id"),
    ForeignKeyConstraint(["tenant", "client_id"], ["clients.tenant", "clients.client_id"], ondelete="CASCADE"),
)

contacts = Table(
    "contacts",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("contact_name_id", nullable=False, default=True),
    Column("full_name", Text),
    Column("email", Text),
    Column("role", Text),
    Column("approver", Boolean),
    _ts("created_at"),
    _ts("updated_at"),
    Column("is_inactive", Boolean, nullable=False, server_default=text("false")),
    Column("notes", Text),
    Column("is_client_admin", Boolean, nullable=False, server_default=text("false")),
    _uuid("client_id"),
    _uuid("notes_document_id"),
    _uuid("inbound_ticket_defaults_id"),
    Column("primary_email_canonical_type", Text),
    _uuid("primary_email_custom_type_id"),
    PrimaryKeyConstraint("tenant", "contact_name_id"),
    UniqueConstraint("tenant", "email"),
    _tenant_fk(),
    ForeignKeyConstraint(["tenant", "client_id"], ["clients.tenant", "clients.client_id"], ondelete="CASCADE"),
    ForeignKeyConstraint(
        ["tenant", "primary_email_custom_type_id"],
        ["contact_email_type_definitions.tenant", "contact_email_type_definitions.contact_email_type_id"],
        name="fk_contacts_primary_email_custom_type",
    ),
    # Emails are stored normalised (lower case, trimmed), so equality lookups use the unique index.
    CheckConstraint("email = lower(btrim(email))", name="email_normalized"),
    # Trigger (migration 0002): a primary email may not equal any additional email of the tenant.
)

contact_phone_numbers = Table(
    "contact_phone_numbers",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("contact_phone_number_id", nullable=False, default=True),
    _uuid("contact_name_id", nullable=False),
    Column("phone_number", Text, nullable=False),
    Column("canonical_type", Text),
    _uuid("custom_phone_type_id"),
    Column("is_default", Boolean, nullable=False, server_default=text("false")),
    Column("display_order", Integer, nullable=False, server_default=text("0")),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Column(
        "normalized_phone_number",
        Text,
        Computed("regexp_replace(btrim(phone_number), '[^0-9]+', '', 'g')", persisted=True),
    ),
    Column("extension", Text),
    PrimaryKeyConstraint("tenant", "contact_phone_number_id"),
    ForeignKeyConstraint(
        ["tenant", "contact_name_id"], ["contacts.tenant", "contacts.contact_name_id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(
        ["tenant", "custom_phone_type_id"],
        ["contact_phone_type_definitions.tenant", "contact_phone_type_definitions.contact_phone_type_id"],
        name="fk_contact_phone_numbers_custom_type",
    ),
    CheckConstraint(
        "canonical_type IS NULL OR canonical_type IN ('work', 'mobile', 'home', 'fax', 'other')",
        name="canonical_type",
    ),
    CheckConstraint("(canonical_type IS NULL) <> (custom_phone_type_id IS NULL)", name="type_source"),
    Index("ix_contact_phone_numbers_normalized", "tenant", "normalized_phone_number"),
    Index(
        "ux_contact_phone_numbers_default_per_contact",
        "tenant",
        "contact_name_id",
        unique=True,
        postgresql_where=text("is_default = true"),
    ),
)

contact_additional_email_addresses = Table(
    "contact_additional_email_addresses",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("contact_additional_email_address_id", nullable=False, default=True),
    _uuid("contact_name_id", nullable=False),
    Column("email_address", Text, nullable=False),
    Column("canonical_type", Text),
    _uuid("custom_email_type_id"),
    Column("display_order", Integer, nullable=False, server_default=text("0")),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    Column("normalized_email_address", Text, Computed("lower(btrim(email_address))", persisted=True)),
    PrimaryKeyConstraint("tenant", "contact_additional_email_address_id"),
    ForeignKeyConstraint(
        ["tenant", "contact_name_id"], ["contacts.tenant", "contacts.contact_name_id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(
        ["tenant", "custom_email_type_id"],
        ["contact_email_type_definitions.tenant", "contact_email_type_definitions.contact_email_type_id"],
        name="fk_contact_additional_emails_custom_type",
    ),
    # Trigger (migration 0002): an additional email may not equal any primary email of the tenant.
    CheckConstraint(
        "canonical_type IS NULL OR canonical_type IN ('work', 'personal', 'billing', 'other')",
        name="canonical_type",
    ),
    CheckConstraint("(canonical_type IS NULL) <> (custom_email_type_id IS NULL)", name="type_source"),
    Index(
        "ux_contact_additional_email_addresses_tenant_normalized_email",
        "tenant",
        "normalized_email_address",
        unique=True,
    ),
)


def _type_definitions(name: str, id_column: str) -> Table:
    """Custom phone / email type labels of a tenant (reference: contact_*_type_definitions)."""
    return Table(
        name,
        metadata,
        _uuid("tenant", nullable=False),
        _uuid(id_column, nullable=False, default=True),
        Column("label", Text, nullable=False),
        # psa.domain.values.name_key of the label (the reference: lower(btrim(label))).
        Column("normalized_label", Text, nullable=False, info={"key_of": "label"}),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        PrimaryKeyConstraint("tenant", id_column),
        UniqueConstraint("tenant", "normalized_label"),
        _tenant_fk(),
    )


contact_phone_type_definitions = _type_definitions("contact_phone_type_definitions", "contact_phone_type_id")
contact_email_type_definitions = _type_definitions("contact_email_type_definitions", "contact_email_type_id")

client_tax_rates = Table(
    "client_tax_rates",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("client_tax_rates_id", nullable=False, default=True),
    _uuid("client_id", nullable=False),
    _uuid("tax_rate_id", nullable=False),
    _uuid("location_id"),
    Column("is_default", Boolean, nullable=False, server_default=text("false")),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "client_tax_rates_id"),
    # Beyond the reference: a client links a rate once, so default tax settings are idempotent.
    UniqueConstraint("tenant", "client_id", "tax_rate_id"),
    ForeignKeyConstraint(["tenant", "client_id"], ["clients.tenant", "clients.client_id"], ondelete="CASCADE"),
    ForeignKeyConstraint(
        ["tenant", "tax_rate_id"], ["tax_rates.tenant", "tax_rates.tax_rate_id"], name="fk_client_tax_rates_tax_rate"
    ),
)

client_email_settings = Table(
    "client_email_settings",
    metadata,
    # A client's email domain suffix (reference: the former company email-suffix setting).
    # Self-registration stays off unless an operator enables it: the reference removed the setting because
    # anyone at the domain could register for the portal.
    _uuid("tenant", nullable=False),
    _uuid("client_id", nullable=False),
    Column("email_suffix", Text, nullable=False),
    Column("self_registration_enabled", Boolean, nullable=False, server_default=text("false")),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "client_id", "email_suffix"),
    ForeignKeyConstraint(["tenant", "client_id"], ["clients.tenant", "clients.client_id"], ondelete="CASCADE"),
)

tag_definitions = Table(
    "tag_definitions",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("tag_id", nullable=False, default=True),
    Column("tag_text", Text, nullable=False),
    _name_key("tag_text"),
    Column("tagged_type", Text, nullable=False),
    Column("background_color", String(255)),
    Column("text_color", String(255)),
    _ts("created_at"),
    _uuid("board_id"),
    PrimaryKeyConstraint("tenant", "tag_id"),
    # One definition per tag text's key and tagged type (the reference: per exact, case-sensitive text).
    UniqueConstraint("tenant", "tagged_type", "name_key"),
    _tenant_fk(),
)

tag_mappings = Table(
    "tag_mappings",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("mapping_id", nullable=False, default=True),
    _uuid("tag_id", nullable=False),
    _uuid("tagged_id", nullable=False),
    Column("tagged_type", Text, nullable=False),
    _ts("created_at"),
    _uuid("created_by"),
    PrimaryKeyConstraint("tenant", "mapping_id"),
    UniqueConstraint("tenant", "tag_id", "tagged_id"),
    ForeignKeyConstraint(
        ["tenant", "tag_id"], ["tag_definitions.tenant", "tag_definitions.tag_id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(["tenant", "created_by"], ["users.tenant", "users.user_id"]),
    Index("ix_tag_mappings_tagged", "tenant", "tagged_id", "tagged_type"),
)

audit_logs = Table(
    "audit_logs",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("audit_id", nullable=False, default=True),
    _uuid("user_id"),
    Column("operation", Text, nullable=False),
    Column("table_name", Text, nullable=False),
    Column("record_id", Text, nullable=False),
    Column("changed_data", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _ts("timestamp", nullable=False),
    PrimaryKeyConstraint("tenant", "audit_id"),
    _tenant_fk(),
    Index("ix_audit_logs_record", "tenant", "table_name", "record_id"),
)

next_number = Table(
    "next_number",
    metadata,
    _uuid("tenant", nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("last_number", BigInteger, nullable=False, server_default=text("0")),
    Column("initial_value", BigInteger, nullable=False, server_default=text("1000")),
    Column("prefix", Text, server_default="TIC"),
    Column("padding_length", Integer, server_default=text("6")),
    PrimaryKeyConstraint("tenant", "entity_type"),
    _tenant_fk(),
)

# -- tickets, interactions, statuses, notes documents (migration 0003) -----------------------------

STATUS_TYPES = ("ticket", "interaction", "project", "project_task")

statuses = Table(
    "statuses",
    metadata,
    # Reference: statuses. Ticket statuses are per tenant here (there are no boards yet).
    _uuid("tenant", nullable=False),
    _uuid("status_id", nullable=False, default=True),
    Column("name", Text, nullable=False),
    _name_key("name"),
    Column("status_type", Text, nullable=False),
    Column("order_number", Integer, nullable=False),
    Column("is_closed", Boolean, nullable=False, server_default=text("false")),
    Column("is_default", Boolean, nullable=False, server_default=text("false")),
    Column("color", String(7)),
    Column("icon", String(50)),
    _uuid("created_by"),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("tenant", "status_id"),
    UniqueConstraint("tenant", "status_type", "name_key"),
    _tenant_fk(),
    CheckConstraint("status_type IN ('ticket', 'interaction', 'project', 'project_task')", name="status_type"),
    # At most one default status per kind, so "the default interaction status" is well defined.
    Index(
        "ux_statuses_default_per_type",
        "tenant",
        "status_type",
        unique=True,
        postgresql_where=text("is_default = true"),
    ),
)

system_interaction_types = Table(
    "system_interaction_types",
    metadata,
    # A global catalogue shared by every tenant (docs/architecture.md, "Data model": small reference tables);
    # rows seeded by migration 0003.
    _uuid("type_id", nullable=False, default=True),
    Column("type_name", Text, nullable=False),
    Column("icon", Text),
    Column("display_order", Integer, nullable=False, server_default=text("0")),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("type_id"),
    UniqueConstraint("type_name"),
)

interaction_types = Table(
    "interaction_types",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("type_id", nullable=False, default=True),
    Column("type_name", Text, nullable=False),
    _name_key("type_name"),
    Column("icon", Text),
    Column("display_order", Integer),
    _uuid("system_type_id"),
    _uuid("created_by"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "type_id"),
    _tenant_fk(),
    # A global catalogue row: the one foreign key that cannot lead with tenant (a Citus reference table).
    ForeignKeyConstraint(
        ["system_type_id"], ["system_interaction_types.type_id"], name="fk_interaction_types_system_type"
    ),
    # Type names are unique per tenant by their key (reference: crm.create_interaction_type's duplicate check).
    UniqueConstraint("tenant", "name_key"),
)

tickets = Table(
    "tickets",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("ticket_id", nullable=False, default=True),
    Column("ticket_number", Text, nullable=False),
    Column("title", Text, nullable=False),
    _uuid("client_id"),
    _uuid("contact_name_id"),
    _uuid("location_id"),
    _uuid("status_id"),
    _uuid("assigned_to"),
    _uuid("entered_by"),
    _uuid("updated_by"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("closed_at", default=False),
    Column("attributes", JSONB),
    PrimaryKeyConstraint("tenant", "ticket_id"),
    UniqueConstraint("tenant", "ticket_number"),
    _tenant_fk(),
    # NO ACTION: a client, contact, location or status still referenced by a ticket cannot be deleted
    # (reference: clients.delete / contacts.delete dependency guardrails); deleting the tenant cascades.
    ForeignKeyConstraint(["tenant", "client_id"], ["clients.tenant", "clients.client_id"], name="fk_tickets_client"),
    ForeignKeyConstraint(
        ["tenant", "contact_name_id"], ["contacts.tenant", "contacts.contact_name_id"], name="fk_tickets_contact"
    ),
    ForeignKeyConstraint(
        ["tenant", "location_id"],
        ["client_locations.tenant", "client_locations.location_id"],
        name="fk_tickets_location",
    ),
    ForeignKeyConstraint(["tenant", "status_id"], ["statuses.tenant", "statuses.status_id"], name="fk_tickets_status"),
    Index("ix_tickets_client", "tenant", "client_id"),
    Index("ix_tickets_contact", "tenant", "contact_name_id"),
)

interactions = Table(
    "interactions",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("interaction_id", nullable=False, default=True),
    # A tenant interaction_types or a global system_interaction_types id, hence no foreign key.
    _uuid("type_id", nullable=False),
    _uuid("client_id"),
    _uuid("contact_name_id"),
    _uuid("ticket_id"),
    _uuid("project_id"),
    _uuid("user_id", nullable=False),
    Column("title", Text, nullable=False),
    Column("notes", Text),
    _ts("interaction_date", nullable=False, default=False),
    _ts("start_time", default=False),
    _ts("end_time", default=False),
    Column("duration", Integer),
    _uuid("status_id"),
    Column("visibility", Text, nullable=False, server_default="internal"),
    Column("category", Text),
    Column("tags", JSONB),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    # Beyond the reference (migration 0005, crm.complete_activity): when, by whom and the feedback.
    _ts("completed_at", default=False),
    _uuid("completed_by"),
    Column("feedback", Text),
    PrimaryKeyConstraint("tenant", "interaction_id"),
    _tenant_fk(),
    ForeignKeyConstraint(
        ["tenant", "client_id"], ["clients.tenant", "clients.client_id"], name="fk_interactions_client"
    ),
    ForeignKeyConstraint(
        ["tenant", "contact_name_id"], ["contacts.tenant", "contacts.contact_name_id"], name="fk_interactions_contact"
    ),
    ForeignKeyConstraint(
        ["tenant", "ticket_id"], ["tickets.tenant", "tickets.ticket_id"], name="fk_interactions_ticket"
    ),
    ForeignKeyConstraint(
        ["tenant", "status_id"], ["statuses.tenant", "statuses.status_id"], name="fk_interactions_status"
    ),
    CheckConstraint("visibility IN ('internal', 'client_visible')", name="visibility"),
    CheckConstraint("duration IS NULL OR duration >= 0", name="duration"),
    CheckConstraint("start_time IS NULL OR end_time IS NULL OR start_time <= end_time", name="time_range"),
    Index("ix_interactions_client", "tenant", "client_id", "interaction_date"),
    Index("ix_interactions_contact", "tenant", "contact_name_id"),
    Index("ix_interactions_ticket", "tenant", "ticket_id"),
    Index("ix_interactions_type_status", "tenant", "type_id", "status_id", "interaction_date"),
    Index("ix_interactions_user", "tenant", "user_id", "interaction_date"),
    Index("ix_interactions_date", "tenant", "interaction_date"),
)

documents = Table(
    "documents",
    metadata,
    # The columns the reference uses for notes documents (reference: the notes-document helpers); files and
    # folders come later.
    _uuid("tenant", nullable=False),
    _uuid("document_id", nullable=False, default=True),
    Column("document_name", Text, nullable=False),
    _uuid("type_id"),
    _uuid("shared_type_id"),
    _uuid("user_id"),
    _uuid("created_by"),
    _uuid("edited_by"),
    _ts("entered_at", nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "document_id"),
    _tenant_fk(),
)

document_block_content = Table(
    "document_block_content",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("content_id", nullable=False, default=True),
    _uuid("document_id", nullable=False),
    Column("block_data", JSONB, nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "content_id"),
    UniqueConstraint("tenant", "document_id"),
    _tenant_fk(),
    ForeignKeyConstraint(["tenant", "document_id"], ["documents.tenant", "documents.document_id"], ondelete="CASCADE"),
)

DOCUMENT_ENTITY_TYPES = (
    "client",
    "contact",
    "ticket",
    "company",
    "user",
    "project",
    "asset",
    "contract",
    "quote",
    "interaction",
)

document_associations = Table(
    "document_associations",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("association_id", nullable=False, default=True),
    _uuid("document_id", nullable=False),
    _uuid("entity_id", nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("is_entity_logo", Boolean, nullable=False, server_default=text("false")),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("tenant", "association_id"),
    UniqueConstraint("tenant", "document_id", "entity_type", "entity_id", name="uq_document_associations_link"),
    _tenant_fk(),
    ForeignKeyConstraint(["tenant", "document_id"], ["documents.tenant", "documents.document_id"], ondelete="CASCADE"),
    CheckConstraint(
        "entity_type IN ('client', 'contact', 'ticket', 'company', 'user', 'project', 'asset', 'contract', "
        "'quote', 'interaction')",
        name="entity_type",
    ),
    Index("ix_document_associations_entity", "tenant", "entity_type", "entity_id"),
)

# -- contacts.* actions (reference: the contacts.* actions; migration 0004) ---------------------------------------
# Search and phone lookups (contacts.search, contacts.find): trigram indexes (pg_trgm, with btree_gin for the
# leading tenant) serve ``ILIKE '%q%'`` on names, emails and phone digits; the last-7 / last-10 digit
# expressions serve phone matching by suffix. The trigram indexes have no pending list (fastupdate off): a search
# never scans a list of unmerged entries (measured 40-60 ms after bulk inserts until a vacuum merged them).
NO_PENDING_LIST = {"fastupdate": "off"}

Index(
    "ix_contacts_full_name_trgm",
    contacts.c.tenant,
    contacts.c.full_name,
    postgresql_using="gin",
    postgresql_ops={"full_name": "gin_trgm_ops"},
    postgresql_with=NO_PENDING_LIST,
)
Index(
    "ix_contacts_email_trgm",
    contacts.c.tenant,
    contacts.c.email,
    postgresql_using="gin",
    postgresql_ops={"email": "gin_trgm_ops"},
    postgresql_with=NO_PENDING_LIST,
)
Index(
    "ix_contact_additional_email_addresses_trgm",
    contact_additional_email_addresses.c.tenant,
    contact_additional_email_addresses.c.normalized_email_address,
    postgresql_using="gin",
    postgresql_ops={"normalized_email_address": "gin_trgm_ops"},
    postgresql_with=NO_PENDING_LIST,
)
Index(
    "ix_contact_phone_numbers_trgm",
    contact_phone_numbers.c.tenant,
    contact_phone_numbers.c.normalized_phone_number,
    postgresql_using="gin",
    postgresql_ops={"normalized_phone_number": "gin_trgm_ops"},
    postgresql_with=NO_PENDING_LIST,
)
Index("ix_contact_phone_numbers_last10", contact_phone_numbers.c.tenant, text("right(normalized_phone_number, 10)"))
Index("ix_contact_phone_numbers_last7", contact_phone_numbers.c.tenant, text("right(normalized_phone_number, 7)"))

comments = Table(
    "comments",
    metadata,
    # Ticket comments, written by an internal user or a client-portal contact (reference: comments).
    _uuid("tenant", nullable=False),
    _uuid("comment_id", nullable=False, default=True),
    _uuid("ticket_id", nullable=False),
    _uuid("user_id"),
    _uuid("contact_id"),
    Column("note", Text, nullable=False),
    Column("author_type", Text, nullable=False, server_default="internal"),
    Column("is_internal", Boolean, nullable=False, server_default=text("false")),
    Column("is_resolution", Boolean, nullable=False, server_default=text("false")),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "comment_id"),
    _tenant_fk(),
    ForeignKeyConstraint(["tenant", "ticket_id"], ["tickets.tenant", "tickets.ticket_id"], ondelete="CASCADE"),
    ForeignKeyConstraint(["tenant", "user_id"], ["users.tenant", "users.user_id"]),
    # NO ACTION: deleting a contact removes its comments first (contacts.delete cleanup).
    ForeignKeyConstraint(["tenant", "contact_id"], ["contacts.tenant", "contacts.contact_name_id"]),
    CheckConstraint("author_type IN ('internal', 'client', 'system')", name="author_type"),
    Index("ix_comments_ticket", "tenant", "ticket_id", "created_at"),
    Index("ix_comments_contact", "tenant", "contact_id"),
)

portal_invitations = Table(
    "portal_invitations",
    metadata,
    # Invitations of a contact to the client portal; only a SHA-256 hash of the token is stored.
    _uuid("tenant", nullable=False),
    _uuid("invitation_id", nullable=False, default=True),
    _uuid("contact_id", nullable=False),
    Column("email", Text, nullable=False),
    Column("token_hash", Text, nullable=False),
    _ts("expires_at", nullable=False, default=False),
    _ts("used_at", default=False),
    _uuid("created_by"),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("tenant", "invitation_id"),
    UniqueConstraint("tenant", "token_hash"),
    _tenant_fk(),
    # NO ACTION: deleting a contact removes its invitations first (contacts.delete cleanup).
    ForeignKeyConstraint(["tenant", "contact_id"], ["contacts.tenant", "contacts.contact_name_id"]),
    ForeignKeyConstraint(["tenant", "created_by"], ["users.tenant", "users.user_id"]),
    Index("ix_portal_invitations_contact", "tenant", "contact_id"),
)

survey_invitations = Table(
    "survey_invitations",
    metadata,
    # A satisfaction survey sent to a contact about a ticket (reference: survey_invitations).
    _uuid("tenant", nullable=False),
    _uuid("invitation_id", nullable=False, default=True),
    _uuid("contact_id"),
    _uuid("client_id"),
    _uuid("ticket_id"),
    Column("token_hash", Text, nullable=False),
    _ts("sent_at", nullable=False),
    _ts("expires_at", default=False),
    _ts("responded_at", default=False),
    PrimaryKeyConstraint("tenant", "invitation_id"),
    UniqueConstraint("tenant", "token_hash"),
    _tenant_fk(),
    # NO ACTION: a contact, client or ticket with surveys is not deleted (contacts.delete dependency).
    ForeignKeyConstraint(["tenant", "contact_id"], ["contacts.tenant", "contacts.contact_name_id"]),
    ForeignKeyConstraint(["tenant", "client_id"], ["clients.tenant", "clients.client_id"]),
    ForeignKeyConstraint(["tenant", "ticket_id"], ["tickets.tenant", "tickets.ticket_id"]),
    Index("ix_survey_invitations_contact", "tenant", "contact_id"),
)

survey_responses = Table(
    "survey_responses",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("response_id", nullable=False, default=True),
    _uuid("invitation_id"),
    _uuid("contact_id"),
    _uuid("client_id"),
    _uuid("ticket_id"),
    Column("rating", Integer, nullable=False),
    Column("comment", Text),
    _ts("submitted_at", nullable=False),
    PrimaryKeyConstraint("tenant", "response_id"),
    _tenant_fk(),
    ForeignKeyConstraint(
        ["tenant", "invitation_id"], ["survey_invitations.tenant", "survey_invitations.invitation_id"]
    ),
    ForeignKeyConstraint(["tenant", "contact_id"], ["contacts.tenant", "contacts.contact_name_id"]),
    ForeignKeyConstraint(["tenant", "client_id"], ["clients.tenant", "clients.client_id"]),
    ForeignKeyConstraint(["tenant", "ticket_id"], ["tickets.tenant", "tickets.ticket_id"]),
    CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
    Index("ix_survey_responses_contact", "tenant", "contact_id"),
)

asset_associations = Table(
    "asset_associations",
    metadata,
    # Links an asset to a client, contact or ticket (reference: asset_associations). The assets table itself
    # comes with the asset module, hence no foreign key on asset_id yet.
    _uuid("tenant", nullable=False),
    _uuid("asset_id", nullable=False),
    _uuid("entity_id", nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("relationship_type", Text, nullable=False, server_default="owner"),
    _uuid("created_by"),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("tenant", "asset_id", "entity_id", "entity_type"),
    _tenant_fk(),
    CheckConstraint("entity_type IN ('client', 'contact', 'ticket', 'project')", name="entity_type"),
    Index("ix_asset_associations_entity", "tenant", "entity_type", "entity_id"),
)

# -- workflow automation runtime (reference: the runtime schema, tenant-first as in its Citus variant) ----

workflow_definitions = Table(
    "workflow_definitions",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("workflow_id", nullable=False, default=True),
    Column("key", Text),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("payload_schema_ref", Text),
    Column("trigger", JSONB),
    Column("draft_definition", JSONB, nullable=False),
    Column("draft_version", Integer, nullable=False, server_default=text("1")),
    Column("status", Text, nullable=False, server_default="draft"),
    Column("is_paused", Boolean, nullable=False, server_default=text("false")),
    _uuid("created_by"),
    _uuid("updated_by"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "workflow_id"),
    _tenant_fk(),
    CheckConstraint("status IN ('draft', 'published')", name="status"),
    Index("ux_workflow_definitions_key", "tenant", "key", unique=True, postgresql_where=text("key IS NOT NULL")),
)

workflow_definition_versions = Table(
    "workflow_definition_versions",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("version_id", nullable=False, default=True),
    _uuid("workflow_id", nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition_json", JSONB, nullable=False),
    Column("definition_hash", Text, nullable=False),
    _uuid("published_by"),
    _ts("published_at", default=False),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("tenant", "version_id"),
    UniqueConstraint("tenant", "workflow_id", "version", name="uq_workflow_definition_versions_version"),
    _tenant_fk(),
    ForeignKeyConstraint(
        ["tenant", "workflow_id"],
        ["workflow_definitions.tenant", "workflow_definitions.workflow_id"],
        ondelete="CASCADE",
        name="fk_workflow_definition_versions_workflow",
    ),
)

workflow_runs = Table(
    "workflow_runs",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("run_id", nullable=False, default=True),
    _uuid("workflow_id", nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("node_path", Text),
    Column("input_json", JSONB),
    Column("error_json", JSONB),
    Column("trigger_type", Text),
    Column("trigger_metadata_json", JSONB),
    Column("event_type", Text),
    _uuid("actor_user_id"),
    Column("temporal_workflow_id", Text),
    Column("temporal_run_id", Text),
    Column("definition_hash", Text),
    _ts("started_at", nullable=False),
    _ts("completed_at", default=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "run_id"),
    _tenant_fk(),
    ForeignKeyConstraint(
        ["tenant", "workflow_id"],
        ["workflow_definitions.tenant", "workflow_definitions.workflow_id"],
        ondelete="CASCADE",
        name="fk_workflow_runs_workflow",
    ),
    CheckConstraint("status IN ('RUNNING', 'WAITING', 'SUCCEEDED', 'FAILED', 'CANCELED')", name="status"),
    Index("ix_workflow_runs_workflow_status", "tenant", "workflow_id", "status"),
)

workflow_run_steps = Table(
    "workflow_run_steps",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("step_id", nullable=False, default=True),
    _uuid("run_id", nullable=False),
    Column("step_path", Text, nullable=False),
    Column("definition_step_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempt", Integer, nullable=False, server_default=text("1")),
    Column("duration_ms", Integer),
    Column("error_json", JSONB),
    _ts("started_at", nullable=False),
    _ts("completed_at", default=False),
    PrimaryKeyConstraint("tenant", "step_id"),
    _tenant_fk(),
    ForeignKeyConstraint(["tenant", "run_id"], ["workflow_runs.tenant", "workflow_runs.run_id"], ondelete="CASCADE"),
    CheckConstraint("status IN ('STARTED', 'SUCCEEDED', 'FAILED', 'CANCELED')", name="status"),
    Index("ix_workflow_run_steps_run_step_path", "tenant", "run_id", "step_path"),
)

workflow_action_invocations = Table(
    "workflow_action_invocations",
    metadata,
    # The idempotency ledger. ``run_id`` is NULL for direct invocations (API, CLI) outside a workflow run.
    _uuid("tenant", nullable=False),
    _uuid("invocation_id", nullable=False, default=True),
    _uuid("run_id"),
    Column("step_path", Text, nullable=False),
    Column("action_id", Text, nullable=False),
    Column("action_version", Integer, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempt", Integer, nullable=False, server_default=text("1")),
    Column("input_json", JSONB),
    Column("output_json", JSONB),
    Column("error_json", JSONB),
    _ts("created_at", nullable=False),
    _ts("started_at", default=False),
    _ts("completed_at", default=False),
    PrimaryKeyConstraint("tenant", "invocation_id"),
    UniqueConstraint(
        "tenant", "action_id", "action_version", "idempotency_key", name="uq_workflow_action_invocations_key"
    ),
    _tenant_fk(),
    ForeignKeyConstraint(
        ["tenant", "run_id"],
        ["workflow_runs.tenant", "workflow_runs.run_id"],
        ondelete="CASCADE",
        name="fk_workflow_action_invocations_run",
    ),
    CheckConstraint("status IN ('STARTED', 'SUCCEEDED', 'FAILED')", name="status"),
    Index("ix_workflow_action_invocations_run_step_path", "tenant", "run_id", "step_path"),
)

workflow_run_logs = Table(
    "workflow_run_logs",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("log_id", nullable=False, default=True),
    _uuid("run_id", nullable=False),
    Column("step_path", Text),
    Column("level", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("context_json", JSONB),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("tenant", "log_id"),
    _tenant_fk(),
    ForeignKeyConstraint(["tenant", "run_id"], ["workflow_runs.tenant", "workflow_runs.run_id"], ondelete="CASCADE"),
    CheckConstraint("level IN ('DEBUG', 'INFO', 'WARN', 'ERROR')", name="level"),
    Index("ix_workflow_run_logs_run", "tenant", "run_id", "created_at"),
)

workflow_event_outbox = Table(
    "workflow_event_outbox",
    metadata,
    # Transactional outbox of domain events (docs/architecture.md, "Events and the outbox"): written with the
    # action's rows, delivered after commit.
    _uuid("tenant", nullable=False),
    _uuid("event_id", nullable=False, default=True),
    Column("event_type", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    _ts("occurred_at", nullable=False, default=False),
    _uuid("actor_user_id"),
    _uuid("run_id"),
    _ts("created_at", nullable=False),
    _ts("delivered_at", default=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    PrimaryKeyConstraint("tenant", "event_id"),
    UniqueConstraint("tenant", "idempotency_key"),
    _tenant_fk(),
    Index("ix_workflow_event_outbox_undelivered", "created_at", postgresql_where=text("delivered_at IS NULL")),
)

# -- quotes (migration 0005; reference: crm.*quote*) --------------------------------

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


def _money(name: str) -> Column:
    """An amount in integer minor units (cents), 0 by default."""
    return Column(name, BigInteger, nullable=False, server_default=text("0"))


def _flag(name: str, default: bool) -> Column:
    return Column(name, Boolean, nullable=False, server_default=text("true" if default else "false"))


quotes = Table(
    "quotes",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("quote_id", nullable=False, default=True),
    Column("quote_number", Text, nullable=False),
    _uuid("client_id", nullable=False),
    _uuid("contact_id"),
    Column("title", Text, nullable=False),
    Column("description", Text),
    Column("status", Text, nullable=False, server_default="draft"),
    Column("version", Integer, nullable=False, server_default=text("1")),
    _ts("quote_date", nullable=False, default=False),
    _ts("valid_until", nullable=False, default=False),
    Column("po_number", String(255)),
    Column("internal_notes", Text),
    Column("client_notes", Text),
    Column("terms_and_conditions", Text),
    Column("currency_code", String(3), nullable=False, server_default="USD"),
    Column("tax_source", Text, nullable=False, server_default="internal"),
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
    PrimaryKeyConstraint("tenant", "quote_id"),
    UniqueConstraint("tenant", "quote_number"),
    _tenant_fk(),
    ForeignKeyConstraint(["tenant", "client_id"], ["clients.tenant", "clients.client_id"], name="fk_quotes_client"),
    ForeignKeyConstraint(
        ["tenant", "contact_id"], ["contacts.tenant", "contacts.contact_name_id"], name="fk_quotes_contact"
    ),
    CheckConstraint(f"status IN ({', '.join(repr(s) for s in QUOTE_STATUSES)})", name="status"),
    CheckConstraint("valid_until >= quote_date", name="valid_range"),
    Index("ix_quotes_client", "tenant", "client_id", "quote_date"),
    Index("ix_quotes_contact", "tenant", "contact_id", postgresql_where=text("contact_id IS NOT NULL")),
    Index("ix_quotes_quote_date", "tenant", "quote_date"),
)

quote_items = Table(
    "quote_items",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("quote_item_id", nullable=False, default=True),
    _uuid("quote_id", nullable=False),
    Column("description", Text, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    _money("unit_price"),
    _money("total_price"),
    _money("net_amount"),
    _money("tax_amount"),
    Column("unit_of_measure", Text),
    Column("display_order", Integer, nullable=False),
    Column("phase", Text),
    _flag("is_optional", False),
    _flag("is_selected", True),
    _flag("is_recurring", False),
    Column("billing_frequency", Text),
    Column("billing_method", Text),
    _flag("is_discount", False),
    Column("discount_type", Text),
    Column("discount_percentage", Integer),
    _uuid("applies_to_item_id"),
    _uuid("applies_to_service_id"),
    _flag("is_taxable", True),
    Column("tax_region", Text),
    Column("tax_rate", Integer),
    _uuid("location_id"),
    Column("cost", BigInteger),
    Column("cost_currency", String(3)),
    _uuid("created_by"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("tenant", "quote_item_id"),
    _tenant_fk(),
    ForeignKeyConstraint(
        ["tenant", "quote_id"], ["quotes.tenant", "quotes.quote_id"], name="fk_quote_items_quote", ondelete="CASCADE"
    ),
    CheckConstraint("quantity > 0", name="quantity"),
    Index("ix_quote_items_quote", "tenant", "quote_id", "display_order"),
)

quote_activities = Table(
    "quote_activities",
    metadata,
    _uuid("tenant", nullable=False),
    _uuid("activity_id", nullable=False, default=True),
    _uuid("quote_id", nullable=False),
    Column("activity_type", Text, nullable=False),
    Column("description", Text, nullable=False),
    _uuid("performed_by"),
    Column("metadata", JSONB),
    _ts("created_at", nullable=False),
    PrimaryKeyConstraint("tenant", "activity_id"),
    _tenant_fk(),
    ForeignKeyConstraint(
        ["tenant", "quote_id"],
        ["quotes.tenant", "quotes.quote_id"],
        name="fk_quote_activities_quote",
        ondelete="CASCADE",
    ),
    Index("ix_quote_activities_quote", "tenant", "quote_id", "created_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    # HTTP API keys (issue 7): only the SHA-256 of the key is stored; each key acts as one user of its tenant.
    _uuid("tenant", nullable=False),
    _uuid("key_id", nullable=False, default=True),
    _uuid("user_id", nullable=False),
    Column("name", Text, nullable=False),
    Column("key_prefix", Text, nullable=False),
    Column("key_hash", Text, nullable=False),
    _ts("created_at", nullable=False),
    _ts("revoked_at", default=False),
    PrimaryKeyConstraint("tenant", "key_id"),
    _tenant_fk(),
    ForeignKeyConstraint(["tenant", "user_id"], ["users.tenant", "users.user_id"], ondelete="CASCADE"),
    # The lookup before the tenant is known (psa_api_authenticate); keys are 256-bit random, so no uniqueness
    # constraint is needed (and a unique one could not lead with tenant).
    Index("ix_api_keys_key_hash", "key_hash"),
)

EMAIL_STATUSES = ("pending", "sending", "sent", "failed")

email_outbox = Table(
    "email_outbox",
    metadata,
    # One row per email psa sends (migration 0011; docs/architecture.md, "Email outbox"): written in the transaction
    # of the change that causes it, delivered after commit. ``email_id`` derives from ``source_key``; ``message`` is
    # the rendered message, AES-256-GCM ciphertext under the codec key when ``sealed`` (it holds a credential).
    _uuid("tenant", nullable=False),
    _uuid("email_id", nullable=False),
    Column("source_key", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("message_id", Text, nullable=False),
    Column("recipients", JSONB, nullable=False),
    Column("subject", Text, nullable=False),
    Column("message", LargeBinary, nullable=False),
    _flag("sealed", False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("provider", Text),
    Column("location", Text),
    _ts("next_attempt_at"),
    _ts("locked_until", default=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("sent_at", default=False),
    CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in EMAIL_STATUSES) + ")", name="status"),
    PrimaryKeyConstraint("tenant", "email_id"),
    _tenant_fk(),
    Index("ix_email_outbox_unsent", "created_at", postgresql_where=text("status <> 'sent'")),
)

GLOBAL_TABLES: tuple[Table, ...] = (system_interaction_types,)
"""Global catalogues shared by every tenant (no ``tenant`` column; Citus reference tables)."""

TENANT_TABLES: tuple[Table, ...] = tuple(t for t in metadata.sorted_tables if "tenant" in t.c)
"""Every table with a ``tenant`` column, parents before children (``tenants`` itself included)."""
