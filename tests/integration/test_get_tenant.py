"""``tenants.get_tenant``: one tenant by id or by slug, with its first admin (how the CLI resolves ``--tenant``)."""

from __future__ import annotations

import uuid

from psa.db.engine import tenant_transaction
from psa.domain.tenants import get_tenant
from psa.domain.users import UNUSABLE_PASSWORD, create_internal_user
from tests.factories import make_tenant
from tests.helpers import unique_email


async def test_get_tenant_by_id_or_slug_returns_the_row_with_its_admin(engine):
    t = await make_tenant(engine, seeded=True)
    email = unique_email()
    async with tenant_transaction(engine, t.tenant) as conn:
        await create_internal_user(
            conn,
            tenant=t.tenant,
            user_id=uuid.uuid4(),
            first_name="Ada",
            last_name="Lovelace",
            email=email,
            password_hash=UNUSABLE_PASSWORD,
        )
    async with engine.connect() as conn:
        by_id = await get_tenant(conn, str(t.tenant))
        by_slug = await get_tenant(conn, t.slug)
    assert by_id is not None
    assert (by_id.tenant, by_id.slug, by_id.admin_email) == (t.tenant, t.slug, email)
    assert by_slug == by_id


async def test_get_tenant_is_none_for_an_unknown_id_or_slug(engine):
    async with engine.connect() as conn:
        assert await get_tenant(conn, str(uuid.uuid4())) is None
        assert await get_tenant(conn, "no-such-" + uuid.uuid4().hex) is None
