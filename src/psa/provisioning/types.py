"""Input, state, result, signal and update types of ``TenantCreationWorkflow``, and the names of its
activities (reference: the tenant-creation workflow's input, state and result, in snake_case; docs/provisioning.md,
"Steps and progress"). Types only: business validation happens in the ``validate_request`` activity, so a bad
input fails the workflow cleanly instead of failing its workflow tasks."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from psa.email.models import WelcomeRecipient

TRACKING_NAMESPACE = uuid.UUID("a7d3c0f4-2b8e-4f61-9c57-1e0d9b6a4c32")

Step = Literal[
    "initializing",
    "validating",
    "creating_tenant",
    "seeding",
    "creating_admin_user",
    "setting_up_data",
    "sending_welcome_email",
    "completed",
    "failed",
    "cancelled",
]

# Steps in order with the progress (percent) reported when each starts.
STEP_PROGRESS: dict[str, int] = {
    "initializing": 0,
    "validating": 5,
    "creating_tenant": 15,
    "seeding": 30,
    "creating_admin_user": 50,
    "setting_up_data": 65,
    "sending_welcome_email": 80,
    "completed": 100,
}
STEP_ORDER: tuple[str, ...] = tuple(STEP_PROGRESS)


class ActivityName(StrEnum):
    """The registered name of every provisioning activity: ``@activity.defn(name=...)`` takes it from here and
    the workflow calls the activity by it. The workflow cannot name the methods themselves
    (``execute_activity_method(ProvisioningActivities.x)``): importing the activity classes would pull the
    database layer into workflow code, which the import contract ``workflows-pure`` forbids."""

    VALIDATE_REQUEST = "validate_request"
    CREATE_TENANT = "create_tenant"
    SEED_TENANT = "seed_tenant"
    CREATE_ADMIN_USER = "create_admin_user"
    SETUP_TENANT_DATA = "setup_tenant_data"
    SEND_WELCOME_EMAIL = "send_welcome_email"
    RECORD_PROVISIONING_METRICS = "record_provisioning_metrics"
    UNDO_SETUP_TENANT_DATA = "undo_setup_tenant_data"
    UNDO_CREATE_ADMIN_USER = "undo_create_admin_user"
    UNDO_SEED_TENANT = "undo_seed_tenant"
    UNDO_CREATE_TENANT = "undo_create_tenant"
    CREATE_CUSTOMER_CLIENT = "create_customer_client"
    CREATE_CUSTOMER_CONTACT = "create_customer_contact"
    TAG_CUSTOMER_CLIENT = "tag_customer_client"
    CREATE_CUSTOMER_PORTAL_USER = "create_customer_portal_user"
    UNDO_CREATE_CUSTOMER_PORTAL_USER = "undo_create_customer_portal_user"
    UNDO_TAG_CUSTOMER_CLIENT = "undo_tag_customer_client"
    UNDO_CREATE_CUSTOMER_CONTACT = "undo_create_customer_contact"
    UNDO_CREATE_CUSTOMER_CLIENT = "undo_create_customer_client"


class AdminUser(BaseModel):
    """The tenant's first internal user."""

    first_name: str
    last_name: str
    email: str
    password: str | None = Field(default=None, description="operator-chosen; omitted -> generated")


class TenantCreationInput(BaseModel):
    """What to provision. ``tenant_name`` is the display name; ``company_name`` goes to
    ``tenants.client_name`` (fallback tenant_name); ``client_name`` names the MSP client (fallback
    company_name); ``email_provider`` is the tenant's configured provider (smtp|resend|hybrid|microsoft)."""

    tenant_name: str
    admin_user: AdminUser
    tenant_id: str | None = None
    company_name: str | None = None
    client_name: str | None = None
    contract_line: str | None = None
    email_provider: str = "resend"
    license_count: int | None = None
    billing_source: str = "manual"
    plan: str | None = None
    product_code: str = "psa"
    skip_welcome_email: bool = False
    skip_customer_tracking: bool = False


class ValidateRequestArgs(BaseModel):
    request: TenantCreationInput
    tenant_id: str = Field(description="the id this workflow will give the tenant (ours on a resume)")


class ValidatedRequest(BaseModel):
    """``validate_request`` output: the normalised input plus the tenant's slug."""

    input: TenantCreationInput
    slug: str


class CreateTenantArgs(BaseModel):
    tenant_id: str
    slug: str
    client_id: str
    location_id: str
    request: TenantCreationInput


class SeedTenantArgs(BaseModel):
    """``seed_tenant`` input: the tenant and the product whose seed set it gets (psa.domain.seeds.SEED_SETS)."""

    tenant_id: str
    product_code: str


class CreateAdminUserArgs(BaseModel):
    tenant_id: str
    user_id: str
    first_name: str
    last_name: str
    email: str
    password: str | None = None


class AdminUserCreated(BaseModel):
    user_id: str
    role_id: str
    temporary_password: str


class SetupTenantDataArgs(BaseModel):
    tenant_id: str
    email_provider: str
    contract_line: str | None = None


class WelcomeEmailArgs(WelcomeRecipient):
    """``send_welcome_email`` input. The password is a plain string here (a SecretStr would serialise
    masked); workflow payloads are encrypted by the payload codec."""

    temporary_password: str


class CustomerTracking(BaseModel):
    """Outcome of recording the tenant as a customer in the management tenant (best-effort but visible:
    docs/provisioning.md, "Customer tracking"). ``status``: pending -> running -> ok | skipped | failed.
    ``client_renamed`` says the client was named "Name (slug)" because another client had the name;
    ``contact_reused`` says an existing management contact was reused instead of created."""

    status: Literal["pending", "running", "ok", "skipped", "failed"] = "pending"
    management_tenant_id: str | None = None
    customer_client_id: str | None = None
    customer_client_name: str | None = None
    client_renamed: bool = False
    customer_contact_id: str | None = None
    contact_reused: bool = False
    tag_id: str | None = None
    portal_user_id: str | None = None
    error: str | None = None


class TrackingTarget(BaseModel):
    """The tenant to record as a customer, and its admin (the customer contact). ``company_name`` is the
    tenant's ``tenants.client_name`` (company name, else tenant name): the customer client's name."""

    tenant_id: str
    company_name: str
    slug: str
    product_code: str = "psa"
    admin_email: str | None = None
    admin_first_name: str | None = None
    admin_last_name: str | None = None


class CustomerTrackingArgs(BaseModel):
    """Input of every customer-tracking activity and compensation. The management tenant and the ids
    returned by earlier steps are filled in as they become known."""

    target: TrackingTarget
    management_tenant_id: str | None = None
    customer_client_id: str | None = None
    customer_contact_id: str | None = None

    def derived_id(self, what: str) -> str:
        """Row id of ``what`` (client, contact, portal_user) in the management tenant, derived from the
        tracked tenant's id, so the workflow, its retries and ``psa customers reconcile`` address the same rows."""
        return str(uuid.uuid5(TRACKING_NAMESPACE, f"{self.target.tenant_id}/{what}"))


class CustomerClientResult(BaseModel):
    """``create_customer_client`` output; ``skipped_reason`` set when tracking is disabled."""

    management_tenant_id: str | None = None
    client_id: str | None = None
    client_name: str | None = None
    renamed: bool = False
    skipped_reason: str | None = None


class CustomerContactResult(BaseModel):
    contact_id: str
    reused: bool = False


class ProvisioningOutcome(BaseModel):
    """Input of the ``record_provisioning_metrics`` local activity."""

    outcome: Literal["completed", "failed", "cancelled"]
    duration_seconds: float
    tracking_status: str


class CompensationArgs(BaseModel):
    tenant_id: str
    slug: str
    admin_user_id: str | None = None


class CancelSignal(BaseModel):
    """Payload of the ``cancel`` signal."""

    reason: str = "cancelled"
    cancelled_by: str = "unknown"


class UpdateRequest(BaseModel):
    """Payload of the ``update`` Temporal Update: set one input ``field`` not yet used by the workflow."""

    field: str
    value: Any = None


class UpdateResult(BaseModel):
    field: str
    value: Any = None
    applied_at_step: str


class Compensation(BaseModel):
    """What compensation did: ``not_needed`` until a cancel or a business failure after writes began."""

    status: Literal["not_needed", "running", "completed", "failed"] = "not_needed"
    compensated: list[str] = Field(default_factory=list, description="steps undone, in order")
    errors: list[str] = Field(default_factory=list)


class StepTransition(BaseModel):
    """One entry of the state's step history: the step entered, progress then, workflow time (ISO-8601 Z)."""

    step: str
    progress: int
    at: str


class TenantCreationState(BaseModel):
    """Returned by the ``get_state`` query. Never carries a password."""

    step: Step = "initializing"
    progress: int = 0
    slug: str | None = None
    tenant_id: str | None = None
    admin_user_id: str | None = None
    client_id: str | None = None
    email_sent: bool | None = None
    email_error: str | None = None
    email_location: str | None = None
    error: str | None = None
    error_type: str | None = None
    cancel_reason: str | None = None
    cancelled_by: str | None = None
    customer_tracking: CustomerTracking = Field(default_factory=CustomerTracking)
    compensation: Compensation = Field(default_factory=Compensation)
    updates: list[UpdateResult] = Field(default_factory=list)
    history: list[StepTransition] = Field(default_factory=list, description="steps entered, in order")


class TenantCreationResult(BaseModel):
    """Returned when provisioning completes. ``temporary_password`` is the plaintext credential, shown once;
    workflow payloads are encrypted by the payload codec."""

    tenant_id: str
    admin_user_id: str
    client_id: str
    temporary_password: str
    email_sent: bool
    email_error: str | None = None
    email_location: str | None = None
    customer_tracking: CustomerTracking = Field(default_factory=CustomerTracking)
    success: bool = True
    created_at: str
