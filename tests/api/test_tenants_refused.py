"""``POST /api/v1/tenants`` refuses at once what the workflow's validation would refuse (docs/provisioning.md,
"Validation"): a duplicate is 409 and bad input 422, each naming the field, and no workflow starts and nothing is
written."""

from __future__ import annotations

import uuid

import pytest
from temporalio.service import RPCError, RPCStatusCode

from psa.db.engine import tenant_transaction
from psa.domain.tenants import create_tenant
from psa.domain.values import tenant_slug
from psa.provisioning.preflight import planned_tenant_id
from psa.provisioning.types import TenantCreationInput
from psa.provisioning.workflow import derived_id, workflow_id_for
from tests.factories import add_user, make_tenant, tenant_request_body
from tests.helpers import assert_problem, scalar, tenant_row_counts

TENANTS = "/api/v1/tenants"


async def assert_not_started(client, workflow_id: str) -> None:
    """No execution has this workflow id (asked by id, not through the lagging visibility list)."""
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(workflow_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


@pytest.fixture
async def taken(engine):
    """Another tenant, seeded, with an internal admin user: its id, slug, name and the admin's email."""
    other = await make_tenant(engine, seeded=True)
    admin = await add_user(engine, other.tenant, "Admin")
    email = await scalar(engine, "SELECT email FROM users WHERE tenant = :t AND user_id = :u", t=other.tenant, u=admin)
    return other, email


def _refusals(other, email: str):
    """(request body, status, code, field) for each request the workflow would refuse."""
    return [
        (
            tenant_request_body(admin_user={"first_name": "A", "last_name": "B", "email": email.upper()}),
            409,
            "CONFLICT",
            "admin_user.email",
        ),
        (tenant_request_body(tenant_name=other.name.upper()), 409, "CONFLICT", "tenant_name"),
        (tenant_request_body(tenant_name=f"  {other.slug.replace('-', ' ')}!"), 409, "CONFLICT", "tenant_name"),
        (tenant_request_body(tenant_id=str(other.tenant)), 409, "CONFLICT", "tenant_id"),
        (tenant_request_body(product_code="erp"), 422, "VALIDATION_ERROR", "product_code"),
        (tenant_request_body(tenant_id="not-a-uuid"), 422, "VALIDATION_ERROR", "tenant_id"),
    ]


async def test_a_request_validation_would_refuse_is_answered_at_once(http, management, client, engine, taken):
    other, email = taken
    for body, status, code, field in _refusals(other, email):
        workflow_id = workflow_id_for(tenant_slug(body["tenant_name"]))
        derived = derived_id(workflow_id, "tenant")  # the tenant id a started run would have derived
        watched = {derived, str(other.tenant), str(management.tenant)}
        before = {tenant: await tenant_row_counts(engine, tenant) for tenant in watched}

        problem = assert_problem(await http.post(TENANTS, json=body, headers=management.headers()), status, code)
        assert [e["path"] for e in problem["errors"]] == [field], problem
        assert problem["errors"][0]["in"] == "body"
        assert problem["details"]["field"] == field

        await assert_not_started(client, workflow_id)
        assert set(before[derived].values()) == {0}
        for tenant in watched:  # every table with a tenant column, for each tenant the request names
            assert await tenant_row_counts(engine, tenant) == before[tenant], (field, tenant)


async def test_a_rerun_of_its_own_failed_run_is_not_a_duplicate(http, management, engine, client):
    """A tenant row that is this request's own run's (its derived tenant id, its slug) passes the check, as in
    the workflow: a re-run after a failure resumes on the same rows."""
    body = tenant_request_body()
    request = TenantCreationInput.model_validate(body)
    ours = uuid.UUID(planned_tenant_id(request))
    slug = tenant_slug(body["tenant_name"])
    async with tenant_transaction(engine, ours) as conn:
        await create_tenant(conn, tenant=ours, slug=slug, company_name=body["company_name"], email="x@example.com")
    started = await http.post(TENANTS, json=body, headers=management.headers())
    assert started.status_code == 202, started.text
    handle = client.get_workflow_handle(started.json()["workflow_id"])
    await handle.terminate("the test only needed the start")
