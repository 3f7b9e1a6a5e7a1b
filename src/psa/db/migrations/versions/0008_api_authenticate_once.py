"""HTTP API: a request's key, tenant and permissions in one statement

``psa_api_authenticate(hash, permissions)`` takes over from ``psa_api_key_principal(hash)`` (0006): a SECURITY
DEFINER function that returns, for exactly that hash while the key is not revoked and its user is an active
internal user: the key's tenant, user and key id, the tenant's slug (the management check by name) and which of
the asked ``resource:action`` permissions the user's MSP roles grant (the rule of
``psa.automation.permissions.AUTHORIZE``; nothing is looked up when none is asked). The API authenticates and
authorizes a request in one round trip without a transaction, where it took BEGIN, the key lookup, the
permission query and COMMIT. ``psa_api_key_principal`` stays for API processes of the previous release during
a rolling deploy; a later migration drops it.

The permission rule is the one of ``psa.automation.permissions.AUTHORIZE``: a change to one is a change to both.
Its search path is ``pg_catalog, pg_temp`` and every table is schema-qualified, so no object another role
creates can stand in for a function, operator or table it uses.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 10:30:00.000000
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

API_ROLE = "psa_api"

AUTHENTICATE = """
CREATE OR REPLACE FUNCTION psa_api_authenticate(p_key_hash text, p_permissions text[])
RETURNS TABLE (tenant uuid, user_id uuid, key_id uuid, tenant_slug text, granted text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT k.tenant, k.user_id, k.key_id, t.slug,
         CASE WHEN pg_catalog.cardinality(p_permissions) = 0 THEN '{}'::text[] ELSE
         ARRAY(SELECT p.resource || ':' || p.action
                 FROM public.user_roles ur
                 JOIN public.roles r ON r.tenant = ur.tenant AND r.role_id = ur.role_id AND r.msp
                 JOIN public.role_permissions rp ON rp.tenant = ur.tenant AND rp.role_id = ur.role_id
                 JOIN public.permissions p ON p.tenant = rp.tenant AND p.permission_id = rp.permission_id AND p.msp
                WHERE ur.tenant = k.tenant AND ur.user_id = k.user_id
                  AND p.resource || ':' || p.action = ANY(p_permissions)) END
    FROM public.api_keys k
    JOIN public.users u ON u.tenant = k.tenant AND u.user_id = k.user_id
    JOIN public.tenants t ON t.tenant = k.tenant
   WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL AND NOT u.is_inactive AND u.user_type = 'internal'
$fn$
"""


def upgrade() -> None:
    op.execute(AUTHENTICATE)
    op.execute("REVOKE ALL ON FUNCTION psa_api_authenticate(text, text[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION psa_api_authenticate(text, text[]) TO {API_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION psa_api_authenticate(text, text[])")
