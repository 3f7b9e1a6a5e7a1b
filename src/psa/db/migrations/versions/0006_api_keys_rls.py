"""HTTP API: api_keys (hashed keys of tenant users), the API's database roles, and row-level security on every
table with a ``tenant`` column

Design (docs/architecture.md, "Tenant isolation"; docs/operations.md, "HTTP API"):

- ``psa_api`` (NOLOGIN) is the role of the API's transactions: its connections run ``SET ROLE psa_api`` when
  they open (``psa.db.engine.make_api_engine``), so every statement of the API, including the shared domain
  and automation code it calls, runs under the policies below. It may read and write every table except
  ``api_keys`` and ``alembic_version``. The migrating user (owner of the tables; the worker and the CLI
  connect as it) is granted the role so it can ``SET ROLE``; owners bypass RLS, so nothing else changes.
- Every table with a ``tenant`` column (discovered from information_schema, so the tables of migrations
  merged before this one are covered) gets RLS and the policy ``tenant_isolation``: rows are visible and
  writable only when ``tenant`` equals ``app.current_tenant`` (NULLIF: a setting that was set earlier in the
  session reads back as '' rather than NULL, which would make the cast fail instead of matching nothing).
  ``psa_enable_tenant_rls()`` does this idempotently; a later migration that adds tenant tables calls
  ``SELECT psa_enable_tenant_rls()`` (tests/api/test_rls.py fails while any tenant table lacks it).
- API keys are looked up before the tenant is known through ``psa_api_key_principal(sha256_hex)``, a
  SECURITY DEFINER function that returns the (tenant, user, key) of exactly that hash when the key is not
  revoked and its user is an active internal user: the API role can neither list keys nor read hashes.
- ``psa_api_directory`` (NOLOGIN) may only SELECT tenants and their admins (tenants, users, user_roles,
  roles) across tenants: the management tenant's ``GET /api/v1/tenants`` switches to it with
  ``SET LOCAL ROLE`` after checking the caller's permission.

Roles are cluster-wide and may serve other databases of the cluster, so downgrade revokes what this
database granted them and leaves the roles.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

API_ROLE = "psa_api"
DIRECTORY_ROLE = "psa_api_directory"
DIRECTORY_TABLES = ("tenants", "users", "user_roles", "roles")
TENANT_SCOPE = "NULLIF(current_setting('app.current_tenant', true), '')::uuid"

ENABLE_TENANT_RLS = f"""
CREATE OR REPLACE FUNCTION psa_enable_tenant_rls() RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
  t record;
  created integer := 0;
BEGIN
  FOR t IN SELECT c.table_schema, c.table_name
             FROM information_schema.columns c
             JOIN information_schema.tables b ON b.table_schema = c.table_schema AND b.table_name = c.table_name
            WHERE c.table_schema = current_schema() AND c.column_name = 'tenant' AND b.table_type = 'BASE TABLE'
  LOOP
    EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', t.table_schema, t.table_name);
    IF NOT EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = t.table_schema AND p.tablename = t.table_name
                      AND p.policyname = 'tenant_isolation') THEN
      EXECUTE format('CREATE POLICY tenant_isolation ON %I.%I USING (tenant = {TENANT_SCOPE.replace("'", "''")}) '
                     'WITH CHECK (tenant = {TENANT_SCOPE.replace("'", "''")})', t.table_schema, t.table_name);
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END
$fn$
"""

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
    op.create_table(
        "api_keys",
        sa.Column("tenant", sa.UUID(), nullable=False),
        sa.Column("key_id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key_prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.Column("revoked_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant"], ["tenants.tenant"], name=op.f("fk_api_keys_tenant_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant", "user_id"],
            ["users.tenant", "users.user_id"],
            name=op.f("fk_api_keys_tenant_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant", "key_id", name=op.f("pk_api_keys")),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"])

    for role in (API_ROLE, DIRECTORY_ROLE):
        op.execute(
            f"""DO $$ BEGIN
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} NOLOGIN; END IF;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- created by a concurrent migration
                END $$"""
        )
        op.execute(f"GRANT {role} TO CURRENT_USER")
        op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {API_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {API_ROLE}")
    op.execute(f"REVOKE ALL ON alembic_version, api_keys FROM {API_ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {API_ROLE}"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {API_ROLE}")

    op.execute(ENABLE_TENANT_RLS)
    op.execute("SELECT psa_enable_tenant_rls()")
    for table in DIRECTORY_TABLES:
        op.execute(f"GRANT SELECT ON {table} TO {DIRECTORY_ROLE}")
        op.execute(f"CREATE POLICY directory_read ON {table} FOR SELECT TO {DIRECTORY_ROLE} USING (true)")

    op.execute(KEY_PRINCIPAL)
    op.execute("REVOKE ALL ON FUNCTION psa_api_key_principal(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION psa_api_key_principal(text) TO {API_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS psa_api_key_principal(text)")
    for table in DIRECTORY_TABLES:
        op.execute(f"DROP POLICY IF EXISTS directory_read ON {table}")
    op.execute(
        """DO $$ DECLARE t record; BEGIN
             FOR t IN SELECT schemaname, tablename FROM pg_policies
                       WHERE schemaname = current_schema() AND policyname = 'tenant_isolation' LOOP
               EXECUTE format('DROP POLICY tenant_isolation ON %I.%I', t.schemaname, t.tablename);
               EXECUTE format('ALTER TABLE %I.%I DISABLE ROW LEVEL SECURITY', t.schemaname, t.tablename);
             END LOOP;
           END $$"""
    )
    op.execute("DROP FUNCTION IF EXISTS psa_enable_tenant_rls()")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {API_ROLE}"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {API_ROLE}")
    for role in (API_ROLE, DIRECTORY_ROLE):
        op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
        op.execute(f"REVOKE USAGE ON SCHEMA public FROM {role}")
    op.drop_index("ix_api_keys_key_hash", table_name="api_keys")
    op.drop_table("api_keys")
