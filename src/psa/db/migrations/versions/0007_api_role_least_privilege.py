"""HTTP API roles: least privilege (review of 0006)

- ``psa_api_directory`` read every column of ``users`` across tenants, password hashes included, while the
  tenant listing it exists for needs only who each tenant's first admin is. It now reads only those columns
  of ``users`` (no ``hashed_password``, ``username``, phone, login or 2FA data), and only internal users' rows
  (a tenant's admin is one; client-portal users, the MSP's customers' people, are none of its business).
- ``psa_api`` could insert, update and delete the global ``system_interaction_types`` catalogue shared by
  every tenant (no ``tenant`` column, so no policy confines it). The API only reads it: SELECT remains.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 09:10:00.000000
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

API_ROLE = "psa_api"
DIRECTORY_ROLE = "psa_api_directory"
# What psa.domain.tenants._tenants reads of users (the admin of each tenant) as the directory role.
DIRECTORY_USER_COLUMNS = (
    "tenant",
    "user_id",
    "email",
    "first_name",
    "last_name",
    "user_type",
    "is_inactive",
    "created_at",
)
GLOBAL_READ_ONLY = ("system_interaction_types",)


def upgrade() -> None:
    op.execute(f"REVOKE SELECT ON users FROM {DIRECTORY_ROLE}")
    op.execute(f"GRANT SELECT ({', '.join(DIRECTORY_USER_COLUMNS)}) ON users TO {DIRECTORY_ROLE}")
    op.execute("DROP POLICY directory_read ON users")
    op.execute(f"CREATE POLICY directory_read ON users FOR SELECT TO {DIRECTORY_ROLE} USING (user_type = 'internal')")
    for table in GLOBAL_READ_ONLY:
        op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {table} FROM {API_ROLE}")


def downgrade() -> None:
    for table in GLOBAL_READ_ONLY:
        op.execute(f"GRANT INSERT, UPDATE, DELETE ON {table} TO {API_ROLE}")
    op.execute("DROP POLICY directory_read ON users")
    op.execute(f"CREATE POLICY directory_read ON users FOR SELECT TO {DIRECTORY_ROLE} USING (true)")
    op.execute(f"REVOKE SELECT ({', '.join(DIRECTORY_USER_COLUMNS)}) ON users FROM {DIRECTORY_ROLE}")
    op.execute(f"GRANT SELECT ON users TO {DIRECTORY_ROLE}")
