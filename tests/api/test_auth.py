"""API keys: 401 without a valid key, 403 without the permission, keys stored only as hashes."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import text

from psa.config import Settings
from psa.db.engine import tenant_transaction
from psa.domain.api_keys import Principal, authenticate, create_api_key, list_api_keys, revoke_api_key
from psa.domain.errors import NotFoundError, ValidationError
from psa.domain.tenants import is_management_tenant
from tests.helpers import assert_problem, rows

ACTIONS = "/api/v1/automation/actions"


async def test_no_key_is_401(http):
    body = assert_problem(await http.get(ACTIONS), 401, "UNAUTHENTICATED")
    assert "x-api-key" in body["detail"]
    response = await http.get(ACTIONS)
    assert response.headers["www-authenticate"] == "ApiKey"
    assert_problem(await http.get(ACTIONS, headers={"x-api-key": ""}), 401, "UNAUTHENTICATED")


async def test_unknown_key_is_401(http, tenant_a):
    forged = tenant_a.admin_key[:-4] + ("AAAA" if not tenant_a.admin_key.endswith("AAAA") else "BBBB")
    body = assert_problem(await http.get(ACTIONS, headers={"x-api-key": forged}), 401, "UNAUTHENTICATED")
    assert forged not in str(body)


async def test_revoked_key_is_401(http, engine, tenant_a):
    assert (await http.get(ACTIONS, headers=tenant_a.headers())).status_code == 200
    async with tenant_transaction(engine, tenant_a.tenant) as conn:
        [key] = [k for k in await list_api_keys(conn, tenant_a.tenant) if k.user_id == tenant_a.actors.admin]
        first = await revoke_api_key(conn, tenant_a.tenant, key.key_id)
    assert_problem(await http.get(ACTIONS, headers=tenant_a.headers()), 401, "UNAUTHENTICATED")
    async with tenant_transaction(engine, tenant_a.tenant) as conn:  # revoking again keeps the first time
        assert await revoke_api_key(conn, tenant_a.tenant, key.key_id) == first


async def test_key_of_an_inactive_user_is_401(http, engine, tenant_a):
    async with tenant_transaction(engine, tenant_a.tenant) as conn:
        await conn.execute(
            text("UPDATE users SET is_inactive = true WHERE tenant = :t AND user_id = :u"),
            {"t": tenant_a.tenant, "u": tenant_a.actors.technician},
        )
    assert_problem(await http.get(ACTIONS, headers=tenant_a.headers("technician")), 401, "UNAUTHENTICATED")


async def test_key_without_the_permission_is_403(http, tenant_a):
    body = assert_problem(await http.get(ACTIONS, headers=tenant_a.headers("nobody")), 403, "PERMISSION_DENIED")
    assert body["details"] == {"resource": "workflow", "action": "read"}


async def test_provisioning_needs_tenant_create_in_the_management_tenant(http, management, tenant_a):
    # An ordinary tenant's admin holds tenant:create in its own tenant, but is not a management user.
    body = assert_problem(await http.get("/api/v1/tenants", headers=tenant_a.headers()), 403, "PERMISSION_DENIED")
    assert "management tenant" in body["detail"]
    # A management user without tenant:create.
    body = assert_problem(
        await http.get("/api/v1/tenants", headers=management.headers("technician")), 403, "PERMISSION_DENIED"
    )
    assert body["details"] == {"resource": "tenant", "action": "create"}
    assert (await http.get("/api/v1/tenants", headers=management.headers())).status_code == 200


async def test_only_the_hash_is_stored_and_it_resolves_to_its_user(engine, tenant_a):
    async with tenant_transaction(engine, tenant_a.tenant) as conn:
        created = await create_api_key(conn, tenant_a.tenant, tenant_a.actors.technician, name="ci")
    assert created.key.startswith("psa_")
    assert len(created.key) == 4 + 43
    [stored] = await rows(
        engine, "SELECT * FROM api_keys WHERE tenant = :t AND key_id = :k", t=created.tenant, k=created.key_id
    )
    assert stored.key_hash == hashlib.sha256(created.key.encode()).hexdigest()
    assert created.key not in {str(v) for v in stored._mapping.values()}
    async with engine.connect() as conn:
        principal = await authenticate(conn, created.key, [("client", "read"), ("tenant", "create")])
    assert (principal.tenant, principal.user_id, principal.key_id) == (
        tenant_a.tenant,
        tenant_a.actors.technician,
        created.key_id,
    )
    [tenant_row] = await rows(engine, "SELECT slug FROM tenants WHERE tenant = :t", t=tenant_a.tenant)
    assert principal.tenant_slug == tenant_row.slug
    assert principal.granted == {"client:read"}  # asked for two; a technician holds only the first


async def test_create_key_rejects_a_user_of_another_tenant_and_a_blank_name(engine, tenant_a, tenant_b):
    async with tenant_transaction(engine, tenant_a.tenant) as conn:
        with pytest.raises(NotFoundError) as caught:
            await create_api_key(conn, tenant_a.tenant, tenant_b.actors.admin)
        assert caught.value.field == "user"
        with pytest.raises(ValidationError) as caught:
            await create_api_key(conn, tenant_a.tenant, tenant_a.actors.admin, name="  ")
        assert caught.value.field == "name"
    assert not await rows(
        engine, "SELECT 1 FROM api_keys WHERE tenant = :t AND user_id = :u", t=tenant_a.tenant, u=tenant_b.actors.admin
    )


def test_the_management_tenant_is_known_by_id_when_set_else_by_the_slug_of_its_name():
    def is_management(settings: Settings, principal: Principal) -> bool:
        return is_management_tenant(settings, principal.tenant, principal.tenant_slug)

    ops = Principal(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "nine-minds-ops", frozenset())
    other = Principal(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "acme-corp", frozenset())
    by_name = Settings(management_tenant_id=None, management_tenant_name="Nine Minds Ops")
    assert is_management(by_name, ops)
    assert not is_management(by_name, other)
    by_id = Settings(management_tenant_id=other.tenant, management_tenant_name="Nine Minds Ops")
    assert is_management(by_id, other)  # the id wins over the name
    assert not is_management(by_id, ops)
