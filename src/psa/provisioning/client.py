"""Starting and controlling provisioning runs from a Temporal client (CLI, API, tests)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from psa.domain.tenants import clean_name, tenant_slug
from psa.provisioning.types import TenantCreationInput
from psa.provisioning.workflow import TenantCreationWorkflow, workflow_id_for


class TenantAlreadyProvisioned(Exception):
    """The workflow id ``tenant-creation-<slug>`` already completed: the tenant exists."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"tenant already exists: provisioning {workflow_id} has completed")
        self.workflow_id = workflow_id


async def start_tenant_creation(client: Client, request: TenantCreationInput, *, task_queue: str) -> WorkflowHandle:
    """Start ``TenantCreationWorkflow`` under the business key ``tenant-creation-<slug>``.

    A second start of the same tenant while the first runs attaches to it (one tenant, never two); a start
    after a failed or cancelled run re-runs it. Raises TenantAlreadyProvisioned when it already completed,
    and psa.domain.errors.ValidationError when the tenant name is blank, too long or has no slug.
    """
    workflow_id = workflow_id_for(tenant_slug(clean_name(request.tenant_name, field="tenant_name")))
    try:
        return await client.start_workflow(
            TenantCreationWorkflow.run,
            request,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except WorkflowAlreadyStartedError:
        raise TenantAlreadyProvisioned(workflow_id) from None
