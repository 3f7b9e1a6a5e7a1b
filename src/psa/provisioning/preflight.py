"""Validation of a provisioning request against the database (reads only): the input rules, then the tenant's
slug, its id and the admin email across every tenant (docs/provisioning.md, "Validation").

``check_request`` is the one implementation. The workflow's first activity (``validate_request``) runs it and is
the authority under concurrency; the API and the CLI run the same function through ``check_before_start`` before
they start a workflow, so a request that would fail at validation is refused at once and starts nothing.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain import tenants, users
from psa.domain.errors import DuplicateError
from psa.domain.values import clean_name, tenant_slug
from psa.provisioning.types import TenantCreationInput, ValidatedRequest
from psa.provisioning.validation import normalize_request
from psa.provisioning.workflow import derived_id, workflow_id_for


async def check_request(conn: AsyncConnection, request: TenantCreationInput, *, tenant_id: str) -> ValidatedRequest:
    """The normalised request and its slug, once every rule passes for the tenant ``tenant_id`` (the id the run
    gives the tenant). A tenant or admin user that is already this run's own (a re-run) passes.

    ``conn`` must see every tenant's ``tenants`` rows and internal users (the owner's connection, or the API's
    directory role). Raises ValidationError naming the field for bad input (``normalize_request``), and
    DuplicateError when another tenant has the slug (field ``tenant_name``) or the id (``tenant_id``), or an
    internal user of another tenant has the admin email (``admin_user.email``).
    """
    validated = normalize_request(request)
    ours = UUID(tenant_id)
    holders = await tenants.tenants_with_slug_or_id(conn, validated.slug, ours)
    existing = next((row for row in holders if row.slug == validated.slug), None)
    if existing is not None and existing.tenant != ours:
        raise DuplicateError(
            f"a tenant named '{existing.client_name}' (slug '{validated.slug}') already exists", field="tenant_name"
        )
    if existing is None and holders:  # the id is another slug's tenant
        raise DuplicateError(f"tenant id {ours} is already in use", field="tenant_id")
    owner = await users.find_internal_user_tenant(conn, validated.input.admin_user.email)
    if owner is not None and owner != ours:
        raise DuplicateError(
            "an internal user with this email already exists; internal user emails are unique across tenants",
            field="admin_user.email",
        )
    return validated


def planned_tenant_id(request: TenantCreationInput) -> str:
    """The id ``TenantCreationWorkflow`` gives the tenant of ``request``: its ``tenant_id`` as given (checked by
    ``check_request``), else the id derived from the workflow id ``tenant-creation-<slug>``. Raises
    ValidationError when the tenant name has no slug."""
    if request.tenant_id:
        return request.tenant_id
    return derived_id(workflow_id_for(tenant_slug(clean_name(request.tenant_name, field="tenant_name"))), "tenant")


async def check_before_start(conn: AsyncConnection, request: TenantCreationInput) -> ValidatedRequest:
    """``check_request`` for a run that has not started yet, with the tenant id it will have. Raises
    ValidationError or DuplicateError as ``check_request`` does."""
    return await check_request(conn, request, tenant_id=planned_tenant_id(request))
