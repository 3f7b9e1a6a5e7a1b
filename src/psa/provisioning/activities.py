"""Activities of ``TenantCreationWorkflow``. Each step is one transaction on caller-derived ids, so a
retry or a replay after a worker crash writes nothing twice (docs/provisioning.md, "Idempotency").

Domain errors become non-retryable ``ApplicationError`` s whose ``type`` is the error class name
(``ValidationError``, ``DuplicateError``, ``NotFoundError``) and whose details carry ``{code, message, field}``.
Anything else (a database outage, say) propagates and Temporal retries it with backoff.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from psa import metrics
from psa.config import Settings
from psa.db.engine import tenant_transaction
from psa.domain import seeds, tenants, users
from psa.email import (
    EMAIL_TYPE_WELCOME,
    EmailProvider,
    EmailResult,
    EmailSender,
    WelcomeEmail,
    build_provider,
    render_welcome,
)
from psa.provisioning.customer_tracking import CustomerTrackingActivities
from psa.provisioning.failures import activity_errors
from psa.provisioning.preflight import check_request
from psa.provisioning.types import (
    ActivityName,
    AdminUserCreated,
    CompensationArgs,
    CreateAdminUserArgs,
    CreateTenantArgs,
    ProvisioningOutcome,
    SeedTenantArgs,
    SetupTenantDataArgs,
    ValidatedRequest,
    ValidateRequestArgs,
    WelcomeEmailArgs,
)


class ProvisioningActivities:
    """Activity implementations bound to one engine and settings, and the email provider of the process (default
    ``build_provider(settings)``). ``all()`` lists them for a worker."""

    def __init__(self, engine: AsyncEngine, settings: Settings, provider: EmailProvider | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.sender = EmailSender(engine, provider or build_provider(settings), settings)
        self.tracking = CustomerTrackingActivities(engine, settings)

    def all(self) -> list[Callable]:
        """Every activity of the workflow, customer tracking and the metrics local activity included."""
        return [
            self.validate_request,
            self.create_tenant,
            self.seed_tenant,
            self.create_admin_user,
            self.setup_tenant_data,
            self.send_welcome_email,
            self.undo_setup_tenant_data,
            self.undo_create_admin_user,
            self.undo_seed_tenant,
            self.undo_create_tenant,
            self.record_provisioning_metrics,
            *self.tracking.all(),
        ]

    @activity.defn(name=ActivityName.VALIDATE_REQUEST)
    @activity_errors
    async def validate_request(self, args: ValidateRequestArgs) -> ValidatedRequest:
        """Check the input before any write (psa.provisioning.preflight.check_request): names, email syntax,
        enumerations, a duplicate tenant slug or id, and an admin email already used by an internal user of any
        tenant.

        Raises ValidationError / DuplicateError (non-retryable). Reads only.
        """
        async with tenant_transaction(self.engine, None) as conn:
            return await check_request(conn, args.request, tenant_id=args.tenant_id)

    @activity.defn(name=ActivityName.CREATE_TENANT)
    @activity_errors
    async def create_tenant(self, args: CreateTenantArgs) -> None:
        """Tenant row, the tenant's own MSP client with its 'Main Office' location, and the default
        ``tenant_companies`` row, in one transaction (reference: createTenant)."""
        req = args.request
        tenant = UUID(args.tenant_id)
        company = req.company_name or req.tenant_name
        async with tenant_transaction(self.engine, tenant) as conn:
            await tenants.create_tenant(
                conn,
                tenant=tenant,
                slug=args.slug,
                company_name=company,
                email=req.admin_user.email,
                product_code=req.product_code,
                billing_source=req.billing_source,
                plan=req.plan,
                licensed_user_count=req.license_count,
            )
            await tenants.create_default_client(
                conn,
                tenant=tenant,
                client_id=UUID(args.client_id),
                location_id=UUID(args.location_id),
                client_name=req.client_name or company,
                email=req.admin_user.email,
            )

    @activity.defn(name=ActivityName.SEED_TENANT)
    @activity_errors
    async def seed_tenant(self, args: SeedTenantArgs) -> dict[str, int]:
        """The seed set of the tenant's product: roles, permissions, grants, (psa) the default tax region and
        rate, default statuses (reference: run_onboarding_seeds). Returns rows inserted per table.

        Raises ValidationError(field="product_code") for an unsupported product."""
        async with tenant_transaction(self.engine, args.tenant_id) as conn:
            result = await seeds.seed_tenant(conn, UUID(args.tenant_id), args.product_code)
        return dataclasses.asdict(result)

    @activity.defn(name=ActivityName.CREATE_ADMIN_USER)
    @activity_errors
    async def create_admin_user(self, args: CreateAdminUserArgs) -> AdminUserCreated:
        """The internal admin user with a bcrypt-hashed temporary password and the MSP Admin role.

        Raises DuplicateError if the email was taken by another tenant since validation.
        """
        password = args.password or users.generate_temporary_password()
        hashed = await asyncio.to_thread(users.hash_password, password, rounds=self.settings.bcrypt_rounds)
        async with tenant_transaction(self.engine, args.tenant_id) as conn:
            role_id = await users.create_internal_user(
                conn,
                tenant=UUID(args.tenant_id),
                user_id=UUID(args.user_id),
                first_name=args.first_name,
                last_name=args.last_name,
                email=args.email,
                password_hash=hashed,
            )
        activity.logger.info("admin user %s ready in tenant %s", args.user_id, args.tenant_id)
        return AdminUserCreated(user_id=args.user_id, role_id=str(role_id), temporary_password=password)

    @activity.defn(name=ActivityName.SETUP_TENANT_DATA)
    @activity_errors
    async def setup_tenant_data(self, args: SetupTenantDataArgs) -> list[str]:
        """Tenant email settings (disabled config for the chosen provider) and tenant settings."""
        async with tenant_transaction(self.engine, args.tenant_id) as conn:
            await tenants.setup_tenant_settings(conn, tenant=UUID(args.tenant_id), email_provider=args.email_provider)
        return ["email_settings", "tenant_settings"]

    @activity.defn(name=ActivityName.SEND_WELCOME_EMAIL)
    async def send_welcome_email(self, args: WelcomeEmailArgs) -> EmailResult:
        """Queue the welcome email in the email outbox under ``<workflow id>/tenant_welcome``, sealed (it holds the
        temporary password) and claimed in the same statement, then deliver it (docs/provisioning.md, "Welcome
        email"). A retry after the worker died delivers the same row: a ``sent`` row returns its stored outcome, a
        ``sending`` one is re-sent with the same Message-ID. Never raises for a delivery failure: it returns
        ``email_sent=False`` with the error (the password scrubbed), and the worker's email sender retries a
        transient one. Database faults propagate (retried)."""
        tenant = UUID(args.tenant_id)
        welcome = WelcomeEmail.model_validate(args.model_dump())
        try:
            message = render_welcome(self.settings, welcome)
            async with tenant_transaction(self.engine, tenant) as conn:
                claimed = await self.sender.queue_and_claim(
                    conn,
                    tenant=tenant,
                    source_key=f"{activity.info().workflow_id}/{EMAIL_TYPE_WELCOME}",
                    kind=EMAIL_TYPE_WELCOME,
                    message=message,
                    seal_key=self.settings.resolved_codec_key(),
                    take_over=True,
                )
        except ValueError as exc:  # InvalidEmail, or a header the message cannot carry: nothing queued
            error = f"{type(exc).__name__}: {exc}"
            return EmailResult(email_sent=False, provider=self.sender.provider.name, error=error, status="failed")
        return claimed if isinstance(claimed, EmailResult) else await self.sender.send(claimed)

    @activity.defn(name=ActivityName.RECORD_PROVISIONING_METRICS)
    async def record_provisioning_metrics(self, outcome: ProvisioningOutcome) -> None:
        """Local activity: count the provisioning's outcome, duration and tracking status (psa.metrics)."""
        metrics.record_provisioning(outcome.outcome, outcome.duration_seconds, outcome.tracking_status)

    # -- compensation: each idempotent, a no-op when its step wrote nothing ----------------------
    @activity.defn(name=ActivityName.UNDO_SETUP_TENANT_DATA)
    @activity_errors
    async def undo_setup_tenant_data(self, args: CompensationArgs) -> int:
        async with tenant_transaction(self.engine, args.tenant_id) as conn:
            return await tenants.remove_tenant_settings(conn, UUID(args.tenant_id))

    @activity.defn(name=ActivityName.UNDO_CREATE_ADMIN_USER)
    @activity_errors
    async def undo_create_admin_user(self, args: CompensationArgs) -> int:
        if args.admin_user_id is None:
            return 0
        async with tenant_transaction(self.engine, args.tenant_id) as conn:
            return await users.delete_user(conn, tenant=UUID(args.tenant_id), user_id=UUID(args.admin_user_id))

    @activity.defn(name=ActivityName.UNDO_SEED_TENANT)
    @activity_errors
    async def undo_seed_tenant(self, args: CompensationArgs) -> int:
        async with tenant_transaction(self.engine, args.tenant_id) as conn:
            return await seeds.remove_seeds(conn, UUID(args.tenant_id))

    @activity.defn(name=ActivityName.UNDO_CREATE_TENANT)
    @activity_errors
    async def undo_create_tenant(self, args: CompensationArgs) -> int:
        async with tenant_transaction(self.engine, args.tenant_id) as conn:
            return await tenants.delete_tenant(conn, tenant=UUID(args.tenant_id), slug=args.slug)
