"""Starting and controlling provisioning runs from a Temporal client (CLI, API, tests): start, status, the
``cancel`` signal and the ``update`` Update of ``TenantCreationWorkflow`` (docs/provisioning.md, "Cancel and
update")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from psa.domain.values import clean_name, tenant_slug
from psa.provisioning.types import CancelSignal, TenantCreationInput, TenantCreationState, UpdateRequest, UpdateResult
from psa.provisioning.workflow import WORKFLOW_ID_PREFIX, TenantCreationWorkflow, workflow_id_for


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


class UpdateRejected(Exception):
    """The workflow's update validator refused the change; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ProvisioningStatus:
    """A provisioning run as Temporal reports it: workflow id, execution status name (RUNNING, COMPLETED,
    FAILED, CANCELED, TERMINATED, ...) and the ``get_state`` query result."""

    workflow_id: str
    status: str
    state: TenantCreationState


def provisioning_workflow_id(identifier: str) -> str:
    """The workflow id of a provisioning given by workflow id (``tenant-creation-...``), slug or tenant name.

    Raises psa.domain.errors.ValidationError when the name has no letter or digit."""
    if identifier.startswith(WORKFLOW_ID_PREFIX):
        return identifier
    return workflow_id_for(tenant_slug(identifier))


async def provisioning_status(client: Client, workflow_id: str) -> ProvisioningStatus:
    """Describe the run and query its live state. Raises temporalio.service.RPCError (status NOT_FOUND) when
    no such workflow exists."""
    handle = client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    state = await handle.query(TenantCreationWorkflow.get_state)
    status = description.status.name if description.status else "UNKNOWN"
    return ProvisioningStatus(workflow_id, status, state)


async def cancel_provisioning(client: Client, workflow_id: str, *, reason: str, cancelled_by: str) -> None:
    """Send the ``cancel`` signal (the run stops and compensates; ignored once it has ended). Raises RPCError
    NOT_FOUND when no such workflow runs."""
    await client.get_workflow_handle(workflow_id).signal(
        TenantCreationWorkflow.cancel, CancelSignal(reason=reason, cancelled_by=cancelled_by)
    )


async def update_provisioning(client: Client, workflow_id: str, field: str, value: Any) -> UpdateResult:
    """Execute the ``update`` Temporal Update (set one input field not used yet). Raises UpdateRejected with
    the validator's reason, RPCError NOT_FOUND when no such workflow runs."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        return await handle.execute_update(TenantCreationWorkflow.update, UpdateRequest(field=field, value=value))
    except WorkflowUpdateFailedError as exc:
        raise UpdateRejected(str(getattr(exc.cause, "message", exc.cause))) from None
