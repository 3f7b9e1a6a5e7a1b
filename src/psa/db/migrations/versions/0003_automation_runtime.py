"""automation runtime: workflow definitions, versions, runs, steps, the action idempotency ledger, run logs and the
event outbox; the domain tables the clients.* / contacts.* / crm.* actions use: statuses, interaction types (global
catalogue seeded here, and per tenant), tickets, interactions, notes documents and their associations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
GEN_UUID = sa.text("gen_random_uuid()")
JSONB = postgresql.JSONB(astext_type=sa.Text())

# The global interaction type catalogue. Ids are fixed (uuid5 of "psa:system_interaction_types:<name>" in the URL
# namespace) so every database, and every workflow definition that names one, agrees on them.
SYSTEM_INTERACTION_TYPES = (
    ("8e36ee4d-d124-5e40-8076-5d9b3b587fc1", "Call", "phone", 1),
    ("2db33f79-cfd5-54c2-b07b-04f5efa37c70", "Email", "mail", 2),
    ("933a78c3-f69c-5ae9-98cc-73480fb3a89a", "Meeting", "users", 3),
    ("1af97a91-1713-5a9a-a018-72d449958989", "Note", "file-text", 4),
)


def _uuid(name: str, *, nullable: bool = True, default: bool = False) -> sa.Column:
    return sa.Column(name, sa.UUID(), server_default=GEN_UUID if default else None, nullable=nullable)


def _ts(name: str, *, nullable: bool = True, default: bool = True) -> sa.Column:
    return sa.Column(
        name, postgresql.TIMESTAMP(timezone=True), server_default=NOW if default else None, nullable=nullable
    )


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


def _child_fk(
    table: str, column: str, parent: str, parent_column: str, name: str | None = None, *, cascade: bool = True
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant", column],
        [f"{parent}.tenant", f"{parent}.{parent_column}"],
        name=name or op.f(f"fk_{table}_tenant_{column}_{parent}"),
        ondelete="CASCADE" if cascade else None,
    )


def _domain_tables() -> None:
    op.create_table(
        "system_interaction_types",
        _uuid("type_id", nullable=False, default=True),
        sa.Column("type_name", sa.Text(), nullable=False),
        sa.Column("icon", sa.Text(), nullable=True),
        sa.Column("display_order", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("type_id", name=op.f("pk_system_interaction_types")),
        sa.UniqueConstraint("type_name", name=op.f("uq_system_interaction_types_type_name")),
    )
    catalogue = sa.table(
        "system_interaction_types",
        sa.column("type_id", sa.UUID()),
        sa.column("type_name", sa.Text()),
        sa.column("icon", sa.Text()),
        sa.column("display_order", sa.Integer()),
    )
    op.bulk_insert(
        catalogue,
        [
            {"type_id": i, "type_name": n, "icon": icon, "display_order": o}
            for i, n, icon, o in SYSTEM_INTERACTION_TYPES
        ],
    )

    _tenant_table(
        "statuses",
        "status_id",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status_type", sa.Text(), nullable=False),
        sa.Column("order_number", sa.Integer(), nullable=False),
        sa.Column("is_closed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("icon", sa.String(length=50), nullable=True),
        _uuid("created_by"),
        _ts("created_at", nullable=False),
        sa.CheckConstraint(
            "status_type IN ('ticket', 'interaction', 'project', 'project_task')", name=op.f("ck_statuses_status_type")
        ),
        sa.UniqueConstraint("tenant", "status_type", "name", name=op.f("uq_statuses_tenant_status_type_name")),
    )
    op.create_index(
        "ux_statuses_default_per_type",
        "statuses",
        ["tenant", "status_type"],
        unique=True,
        postgresql_where=sa.text("is_default = true"),
    )

    _tenant_table(
        "interaction_types",
        "type_id",
        sa.Column("type_name", sa.Text(), nullable=False),
        sa.Column("icon", sa.Text(), nullable=True),
        sa.Column("display_order", sa.Integer(), nullable=True),
        _uuid("system_type_id"),
        _uuid("created_by"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["system_type_id"], ["system_interaction_types.type_id"], name="fk_interaction_types_system_type"
        ),
    )
    op.create_index(
        "ux_interaction_types_tenant_type_name",
        "interaction_types",
        ["tenant", sa.literal_column("lower(type_name)")],
        unique=True,
    )

    _tenant_table(
        "tickets",
        "ticket_id",
        sa.Column("ticket_number", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
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
        sa.Column("attributes", JSONB, nullable=True),
        # NO ACTION: referenced clients, contacts, locations and statuses cannot be deleted; a tenant delete cascades.
        _child_fk("tickets", "client_id", "clients", "client_id", "fk_tickets_client", cascade=False),
        _child_fk("tickets", "contact_name_id", "contacts", "contact_name_id", "fk_tickets_contact", cascade=False),
        _child_fk("tickets", "location_id", "client_locations", "location_id", "fk_tickets_location", cascade=False),
        _child_fk("tickets", "status_id", "statuses", "status_id", "fk_tickets_status", cascade=False),
        sa.UniqueConstraint("tenant", "ticket_number", name=op.f("uq_tickets_tenant_ticket_number")),
    )
    op.create_index("ix_tickets_client", "tickets", ["tenant", "client_id"])
    op.create_index("ix_tickets_contact", "tickets", ["tenant", "contact_name_id"])

    _tenant_table(
        "interactions",
        "interaction_id",
        _uuid("type_id", nullable=False),  # tenant or system interaction type: no foreign key
        _uuid("client_id"),
        _uuid("contact_name_id"),
        _uuid("ticket_id"),
        _uuid("project_id"),
        _uuid("user_id", nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        _ts("interaction_date", nullable=False, default=False),
        _ts("start_time", default=False),
        _ts("end_time", default=False),
        sa.Column("duration", sa.Integer(), nullable=True),
        _uuid("status_id"),
        sa.Column("visibility", sa.Text(), server_default="internal", nullable=False),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("tags", JSONB, nullable=True),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.CheckConstraint("visibility IN ('internal', 'client_visible')", name=op.f("ck_interactions_visibility")),
        sa.CheckConstraint("duration IS NULL OR duration >= 0", name=op.f("ck_interactions_duration")),
        sa.CheckConstraint(
            "start_time IS NULL OR end_time IS NULL OR start_time <= end_time", name=op.f("ck_interactions_time_range")
        ),
        _child_fk("interactions", "client_id", "clients", "client_id", "fk_interactions_client", cascade=False),
        _child_fk(
            "interactions", "contact_name_id", "contacts", "contact_name_id", "fk_interactions_contact", cascade=False
        ),
        _child_fk("interactions", "ticket_id", "tickets", "ticket_id", "fk_interactions_ticket", cascade=False),
        _child_fk("interactions", "status_id", "statuses", "status_id", "fk_interactions_status", cascade=False),
    )
    op.create_index("ix_interactions_client", "interactions", ["tenant", "client_id", "interaction_date"])
    op.create_index("ix_interactions_contact", "interactions", ["tenant", "contact_name_id"])
    op.create_index("ix_interactions_ticket", "interactions", ["tenant", "ticket_id"])

    _tenant_table(
        "documents",
        "document_id",
        sa.Column("document_name", sa.Text(), nullable=False),
        _uuid("type_id"),
        _uuid("shared_type_id"),
        _uuid("user_id"),
        _uuid("created_by"),
        _uuid("edited_by"),
        _ts("entered_at", nullable=False),
        _ts("updated_at", nullable=False),
    )
    _tenant_table(
        "document_block_content",
        "content_id",
        _uuid("document_id", nullable=False),
        sa.Column("block_data", JSONB, nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _child_fk("document_block_content", "document_id", "documents", "document_id"),
        sa.UniqueConstraint("tenant", "document_id", name=op.f("uq_document_block_content_tenant_document_id")),
    )
    _tenant_table(
        "document_associations",
        "association_id",
        _uuid("document_id", nullable=False),
        _uuid("entity_id", nullable=False),
        sa.Column("entity_type", sa.Text(), nullable=False),
        sa.Column("is_entity_logo", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _ts("created_at", nullable=False),
        sa.CheckConstraint(
            "entity_type IN ('client', 'contact', 'ticket', 'company', 'user', 'project', 'asset', 'contract', "
            "'quote', 'interaction')",
            name=op.f("ck_document_associations_entity_type"),
        ),
        _child_fk("document_associations", "document_id", "documents", "document_id"),
        sa.UniqueConstraint("tenant", "document_id", "entity_type", "entity_id", name="uq_document_associations_link"),
    )
    op.create_index("ix_document_associations_entity", "document_associations", ["tenant", "entity_type", "entity_id"])


def _runtime_tables() -> None:
    _tenant_table(
        "workflow_definitions",
        "workflow_id",
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("payload_schema_ref", sa.Text(), nullable=True),
        sa.Column("trigger", JSONB, nullable=True),
        sa.Column("draft_definition", JSONB, nullable=False),
        sa.Column("draft_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("status", sa.Text(), server_default="draft", nullable=False),
        sa.Column("is_paused", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _uuid("created_by"),
        _uuid("updated_by"),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.CheckConstraint("status IN ('draft', 'published')", name=op.f("ck_workflow_definitions_status")),
    )
    op.create_index(
        "ux_workflow_definitions_key",
        "workflow_definitions",
        ["tenant", "key"],
        unique=True,
        postgresql_where=sa.text("key IS NOT NULL"),
    )

    _tenant_table(
        "workflow_definition_versions",
        "version_id",
        _uuid("workflow_id", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition_json", JSONB, nullable=False),
        sa.Column("definition_hash", sa.Text(), nullable=False),
        _uuid("published_by"),
        _ts("published_at", default=False),
        _ts("created_at", nullable=False),
        _child_fk(
            "workflow_definition_versions",
            "workflow_id",
            "workflow_definitions",
            "workflow_id",
            "fk_workflow_definition_versions_workflow",
        ),
        sa.UniqueConstraint("tenant", "workflow_id", "version", name="uq_workflow_definition_versions_version"),
    )

    _tenant_table(
        "workflow_runs",
        "run_id",
        _uuid("workflow_id", nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("node_path", sa.Text(), nullable=True),
        sa.Column("input_json", JSONB, nullable=True),
        sa.Column("error_json", JSONB, nullable=True),
        sa.Column("trigger_type", sa.Text(), nullable=True),
        sa.Column("trigger_metadata_json", JSONB, nullable=True),
        sa.Column("event_type", sa.Text(), nullable=True),
        _uuid("actor_user_id"),
        sa.Column("temporal_workflow_id", sa.Text(), nullable=True),
        sa.Column("temporal_run_id", sa.Text(), nullable=True),
        sa.Column("definition_hash", sa.Text(), nullable=True),
        _ts("started_at", nullable=False),
        _ts("completed_at", default=False),
        _ts("updated_at", nullable=False),
        sa.CheckConstraint(
            "status IN ('RUNNING', 'WAITING', 'SUCCEEDED', 'FAILED', 'CANCELED')", name=op.f("ck_workflow_runs_status")
        ),
        _child_fk("workflow_runs", "workflow_id", "workflow_definitions", "workflow_id", "fk_workflow_runs_workflow"),
    )
    op.create_index("ix_workflow_runs_workflow_status", "workflow_runs", ["tenant", "workflow_id", "status"])

    _tenant_table(
        "workflow_run_steps",
        "step_id",
        _uuid("run_id", nullable=False),
        sa.Column("step_path", sa.Text(), nullable=False),
        sa.Column("definition_step_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("error_json", JSONB, nullable=True),
        _ts("started_at", nullable=False),
        _ts("completed_at", default=False),
        sa.CheckConstraint(
            "status IN ('STARTED', 'SUCCEEDED', 'FAILED', 'CANCELED')", name=op.f("ck_workflow_run_steps_status")
        ),
        _child_fk("workflow_run_steps", "run_id", "workflow_runs", "run_id"),
    )
    op.create_index("ix_workflow_run_steps_run_step_path", "workflow_run_steps", ["tenant", "run_id", "step_path"])

    _tenant_table(
        "workflow_action_invocations",
        "invocation_id",
        _uuid("run_id"),  # NULL for direct invocations outside a run
        sa.Column("step_path", sa.Text(), nullable=False),
        sa.Column("action_id", sa.Text(), nullable=False),
        sa.Column("action_version", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("input_json", JSONB, nullable=True),
        sa.Column("output_json", JSONB, nullable=True),
        sa.Column("error_json", JSONB, nullable=True),
        _ts("created_at", nullable=False),
        _ts("started_at", default=False),
        _ts("completed_at", default=False),
        sa.CheckConstraint(
            "status IN ('STARTED', 'SUCCEEDED', 'FAILED')", name=op.f("ck_workflow_action_invocations_status")
        ),
        _child_fk(
            "workflow_action_invocations", "run_id", "workflow_runs", "run_id", "fk_workflow_action_invocations_run"
        ),
        sa.UniqueConstraint(
            "tenant", "action_id", "action_version", "idempotency_key", name="uq_workflow_action_invocations_key"
        ),
    )
    op.create_index(
        "ix_workflow_action_invocations_run_step_path",
        "workflow_action_invocations",
        ["tenant", "run_id", "step_path"],
    )

    _tenant_table(
        "workflow_run_logs",
        "log_id",
        _uuid("run_id", nullable=False),
        sa.Column("step_path", sa.Text(), nullable=True),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("context_json", JSONB, nullable=True),
        _ts("created_at", nullable=False),
        sa.CheckConstraint("level IN ('DEBUG', 'INFO', 'WARN', 'ERROR')", name=op.f("ck_workflow_run_logs_level")),
        _child_fk("workflow_run_logs", "run_id", "workflow_runs", "run_id"),
    )
    op.create_index("ix_workflow_run_logs_run", "workflow_run_logs", ["tenant", "run_id", "created_at"])

    _tenant_table(
        "workflow_event_outbox",
        "event_id",
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        _ts("occurred_at", nullable=False, default=False),
        _uuid("actor_user_id"),
        _uuid("run_id"),  # no foreign key: events outlive runs and may come from direct invocations
        _ts("created_at", nullable=False),
        _ts("delivered_at", default=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.UniqueConstraint("tenant", "idempotency_key", name=op.f("uq_workflow_event_outbox_tenant_idempotency_key")),
    )
    # The dispatcher's queue: undelivered events in creation order.
    op.create_index(
        "ix_workflow_event_outbox_undelivered",
        "workflow_event_outbox",
        ["created_at"],
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def upgrade() -> None:
    _domain_tables()
    _runtime_tables()


def downgrade() -> None:
    # Children before parents; indexes go with their tables.
    for table in (
        "workflow_event_outbox",
        "workflow_run_logs",
        "workflow_action_invocations",
        "workflow_run_steps",
        "workflow_runs",
        "workflow_definition_versions",
        "workflow_definitions",
        "document_associations",
        "document_block_content",
        "documents",
        "interactions",
        "tickets",
        "interaction_types",
        "statuses",
        "system_interaction_types",
    ):
        op.drop_table(table)
