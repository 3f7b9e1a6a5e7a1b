"""Input, state, result, signal and update types of ``TenantCreationWorkflow`` (reference: spec §1.2-1.4,
in snake_case). Types only: business validation happens in the ``validate_request`` activity, so a bad
input fails the workflow cleanly instead of failing its workflow tasks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from psa.email.models import WelcomeRecipient

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
    success: bool = True
    created_at: str
