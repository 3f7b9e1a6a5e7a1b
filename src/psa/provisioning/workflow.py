"""``TenantCreationWorkflow``: validate, create the tenant, seed it, create its admin user, set up its
data while recording it as a customer of the management tenant, send the welcome email; with progress,
cancel, update and compensation (docs/provisioning.md, "Steps and progress", "Cancel and update").

Failure policy (docs/provisioning.md, "Failure policy", "Compensation"):
- validation and duplicate checks run first and fail before any write;
- transient faults (database, SMTP) are retried from 1 s doubling to 30 s until the schedule-to-close
  timeout; they never trigger compensation, and re-running the same workflow id resumes idempotently;
- compensation (reverse order, each step idempotent) runs only on cancel (signal or Temporal
  cancellation) or on a business failure (a non-retryable ApplicationError) after writes began,
  and never after completion;
- customer tracking is best-effort: its failure is recorded in ``customer_tracking`` and never fails the
  run; on cancel its records are compensated like every other step.

The workflow imports no database or network module: it calls activities by their names in
``psa.provisioning.types.ActivityName``, which ``ProvisioningActivities`` registers them under.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError as PydanticValidationError

    from psa.domain.errors import (
        ConflictError,
        DomainError,
        DuplicateError,
        EmailExistsError,
        NotFoundError,
        ValidationError,
    )
    from psa.email.models import EmailResult
    from psa.provisioning.types import (
        STEP_ORDER,
        STEP_PROGRESS,
        ActivityName,
        AdminUserCreated,
        CancelSignal,
        CompensationArgs,
        CreateAdminUserArgs,
        CreateTenantArgs,
        CustomerClientResult,
        CustomerContactResult,
        CustomerTrackingArgs,
        ProvisioningOutcome,
        SeedTenantArgs,
        SetupTenantDataArgs,
        StepTransition,
        TenantCreationInput,
        TenantCreationResult,
        TenantCreationState,
        TrackingTarget,
        UpdateRequest,
        UpdateResult,
        ValidatedRequest,
        ValidateRequestArgs,
        WelcomeEmailArgs,
    )
    from psa.provisioning.validation import normalize_request
    from psa.timeutil import iso_z

WORKFLOW_ID_PREFIX = "tenant-creation-"
ID_NAMESPACE = uuid.UUID("6f1c1e52-8a40-4a8e-9a53-0b6c2f7d3e11")
# Business failures: an activity raises these domain errors as ApplicationErrors of the same type name.
NON_RETRYABLE = [
    error.__name__ for error in (ValidationError, DuplicateError, NotFoundError, ConflictError, EmailExistsError)
]
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,  # bounded by schedule_to_close_timeout instead
    non_retryable_error_types=NON_RETRYABLE,
)
DB_STEP_TIMEOUT = timedelta(seconds=60)
SCHEDULE_TO_CLOSE = timedelta(minutes=30)
EMAIL_STEP_TIMEOUT = timedelta(seconds=20)  # SMTP timeout (10 s) plus rendering
# Best-effort tracking gives up sooner than provisioning itself; reconcile repairs what it left.
TRACKING_SCHEDULE_TO_CLOSE = timedelta(minutes=10)

# Input fields an `update` may change, and the step that consumes each (after which it is "used").
UPDATABLE_FIELDS: dict[str, str] = {
    "company_name": "creating_tenant",
    "client_name": "creating_tenant",
    "plan": "creating_tenant",
    "license_count": "creating_tenant",
    "email_provider": "setting_up_data",
    "contract_line": "setting_up_data",
    "skip_customer_tracking": "tracking_customer",
    "skip_welcome_email": "sending_welcome_email",
}
# Writing steps and the activities that undo each, run in reverse order of start. "tracking_customer"
# runs inside the setting_up_data step, concurrently with setup_tenant_data.
COMPENSATIONS: dict[str, tuple[ActivityName, ...]] = {
    "creating_tenant": (ActivityName.UNDO_CREATE_TENANT,),
    "seeding": (ActivityName.UNDO_SEED_TENANT,),
    "creating_admin_user": (ActivityName.UNDO_CREATE_ADMIN_USER,),
    "setting_up_data": (ActivityName.UNDO_SETUP_TENANT_DATA,),
    "tracking_customer": (
        ActivityName.UNDO_CREATE_CUSTOMER_PORTAL_USER,
        ActivityName.UNDO_TAG_CUSTOMER_CLIENT,
        ActivityName.UNDO_CREATE_CUSTOMER_CONTACT,
        ActivityName.UNDO_CREATE_CUSTOMER_CLIENT,
    ),
}


def workflow_id_for(slug: str) -> str:
    """Business key of a provisioning: ``tenant-creation-<slug>``."""
    return WORKFLOW_ID_PREFIX + slug


def derived_id(workflow_id: str, what: str) -> str:
    """Deterministic row id for ``what`` (tenant, client, location, admin_user) of one provisioning, so
    retries, replays and re-runs of the same workflow id address the same rows."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{workflow_id}/{what}"))


class _Cancelled(Exception):
    """Raised inside the workflow when the cancel signal has been received."""


@workflow.defn(name="TenantCreationWorkflow")
class TenantCreationWorkflow:
    """Provision one tenant (input TenantCreationInput, result TenantCreationResult). See the module doc."""

    def __init__(self) -> None:
        self._state = TenantCreationState()
        self._input: TenantCreationInput | None = None
        self._cancel: CancelSignal | None = None
        self._inflight: set[asyncio.Future] = set()
        self._started: list[str] = []
        self._tracking_args: CustomerTrackingArgs | None = None
        self._undo: CompensationArgs | None = None  # known once validation gave the slug

    # -- queries, signals, updates --------------------------------------------------------------
    @workflow.query(name="get_state")
    def get_state(self) -> TenantCreationState:
        """Live state: step, progress, ids, customer tracking, email outcome, error, compensation, updates,
        step history."""
        return self._state

    @workflow.signal(name="cancel")
    def cancel(self, signal: CancelSignal) -> None:
        """Stop and compensate. Ignored once the workflow has completed, failed or been cancelled."""
        if self._state.step in ("completed", "failed", "cancelled") or self._cancel is not None:
            return
        self._cancel = signal
        self._state.cancel_reason = signal.reason
        self._state.cancelled_by = signal.cancelled_by
        self._stop_inflight()

    @workflow.update(name="update")
    def update(self, request: UpdateRequest) -> UpdateResult:
        """Set one input field not yet used (checked first by ``validate_update``); later steps use it."""
        self._input = self._with_update(request)
        result = UpdateResult(field=request.field, value=request.value, applied_at_step=self._state.step)
        self._state.updates.append(result)
        return result

    def _with_update(self, request: UpdateRequest) -> TenantCreationInput:
        """The current input with ``request`` applied, type-checked and normalised.

        Raises pydantic ValidationError or DomainError for an invalid value."""
        assert self._input is not None
        candidate = TenantCreationInput.model_validate({**self._input.model_dump(), request.field: request.value})
        return normalize_request(candidate).input

    @update.validator
    def validate_update(self, request: UpdateRequest) -> None:
        """Accept only fields listed in UPDATABLE_FIELDS whose consuming step has not started, with a
        value that passes the input rules. Raises ValueError with the reason otherwise."""
        if request.field not in UPDATABLE_FIELDS:
            raise ValueError(
                f"field '{request.field}' cannot be updated; updatable fields: {', '.join(UPDATABLE_FIELDS)}"
            )
        if self._input is None or self._state.step in ("completed", "failed", "cancelled") or self._cancel:
            raise ValueError(f"the workflow is {self._state.step}; nothing can be updated")
        used_at = UPDATABLE_FIELDS[request.field]
        if used_at in self._started:
            raise ValueError(f"field '{request.field}' was already used by step '{used_at}'")
        try:
            self._with_update(request)
        except PydanticValidationError as exc:
            raise ValueError(f"invalid value for '{request.field}': {exc.errors()[0]['msg']}") from None
        except DomainError as exc:
            raise ValueError(exc.message) from None

    @workflow.run
    async def run(self, request: TenantCreationInput) -> TenantCreationResult:
        """Run the step sequence (``_provision``); on a cancel or a business failure, compensate and record the
        outcome (``_on_cancel`` / ``_on_failure``). The split keeps the handling of how a run ends apart from
        what provisioning does, as the samples' ``waiting_for_handlers_and_compensation`` workflow does."""
        self._input = request
        self._set_step("initializing")
        try:
            result = await self._provision()
            await self._record_outcome("completed")
            return result
        except (_Cancelled, asyncio.CancelledError, CancelledError):
            await self._on_cancel()
        except ActivityError as exc:
            await self._on_failure(exc)

    async def _provision(self) -> TenantCreationResult:
        """The steps in order: validate, create the tenant, seed it, create its admin user, then set up its data
        and send the welcome email while customer tracking runs beside them. Raises _Cancelled when a cancel
        arrives, ActivityError when a step fails."""
        assert self._input is not None
        wid = workflow.info().workflow_id
        tenant_id = self._input.tenant_id or derived_id(wid, "tenant")
        client_id = derived_id(wid, "client")
        admin_user_id = derived_id(wid, "admin_user")
        validated: ValidatedRequest = await self._step(
            "validating",
            ActivityName.VALIDATE_REQUEST,
            ValidateRequestArgs(request=self._input, tenant_id=tenant_id),
            ValidatedRequest,
        )
        tenant_id = validated.input.tenant_id or tenant_id
        self._state.slug = validated.slug
        self._undo = CompensationArgs(tenant_id=tenant_id, slug=validated.slug, admin_user_id=admin_user_id)
        # Keep updates accepted while validation ran; later updates apply to the normalised input.
        self._input = normalize_request(validated.input.model_copy(update=self._applied_updates())).input

        await self._step(
            "creating_tenant",
            ActivityName.CREATE_TENANT,
            CreateTenantArgs(
                tenant_id=tenant_id,
                slug=validated.slug,
                client_id=client_id,
                location_id=derived_id(wid, "location"),
                request=self._input,
            ),
        )
        self._state.tenant_id, self._state.client_id = tenant_id, client_id

        await self._step(
            "seeding",
            ActivityName.SEED_TENANT,
            SeedTenantArgs(tenant_id=tenant_id, product_code=self._input.product_code),
        )

        admin = self._input.admin_user
        created: AdminUserCreated = await self._step(
            "creating_admin_user",
            ActivityName.CREATE_ADMIN_USER,
            CreateAdminUserArgs(
                tenant_id=tenant_id,
                user_id=admin_user_id,
                first_name=admin.first_name,
                last_name=admin.last_name,
                email=admin.email,
                password=admin.password,
            ),
            AdminUserCreated,
        )
        self._state.admin_user_id = admin_user_id

        # Customer tracking runs beside setup_tenant_data and the welcome email; completion waits for it.
        tracking = asyncio.ensure_future(self._track_customer(self._tracking_target(tenant_id, validated.slug)))
        try:
            email_sent = await self._set_up_and_welcome(tenant_id, created)
        except BaseException:
            self._stop_inflight()
            await workflow.wait([tracking])  # compensation must not race a tracking activity
            raise
        await tracking
        self._state.email_sent = email_sent
        self._enter("completed")
        return TenantCreationResult(
            tenant_id=tenant_id,
            admin_user_id=admin_user_id,
            client_id=client_id,
            temporary_password=created.temporary_password,
            email_sent=email_sent,
            email_error=self._state.email_error,
            email_location=self._state.email_location,
            customer_tracking=self._state.customer_tracking,
            created_at=iso_z(workflow.now()),
        )

    async def _set_up_and_welcome(self, tenant_id: str, admin: AdminUserCreated) -> bool:
        """The ``setting_up_data`` and ``sending_welcome_email`` steps; returns whether the email was sent (its
        error, or "skipped", goes to the state)."""
        assert self._input is not None
        await self._step(
            "setting_up_data",
            ActivityName.SETUP_TENANT_DATA,
            SetupTenantDataArgs(
                tenant_id=tenant_id,
                email_provider=self._input.email_provider,
                contract_line=self._input.contract_line,
            ),
        )
        if self._input.skip_welcome_email:
            self._enter("sending_welcome_email")
            self._state.email_error = "skipped"
            return False
        recipient = self._input.admin_user
        outcome: EmailResult = await self._step(
            "sending_welcome_email",
            ActivityName.SEND_WELCOME_EMAIL,
            WelcomeEmailArgs(
                tenant_id=tenant_id,
                tenant_name=self._input.tenant_name,
                user_id=admin.user_id,
                first_name=recipient.first_name,
                last_name=recipient.last_name,
                email=recipient.email,
                product_code=self._input.product_code,
                temporary_password=admin.temporary_password,
            ),
            EmailResult,
            timeout=EMAIL_STEP_TIMEOUT,
        )
        self._state.email_error = outcome.error
        self._state.email_location = outcome.location
        return outcome.email_sent

    def _tracking_target(self, tenant_id: str, slug: str) -> TrackingTarget:
        """The tenant to record as a customer of the management tenant, with its admin as the contact."""
        assert self._input is not None
        admin = self._input.admin_user
        return TrackingTarget(
            tenant_id=tenant_id,
            company_name=self._input.company_name or self._input.tenant_name,
            slug=slug,
            product_code=self._input.product_code,
            admin_email=admin.email,
            admin_first_name=admin.first_name,
            admin_last_name=admin.last_name,
        )

    # -- how a run ends early ---------------------------------------------------------------------
    async def _on_cancel(self) -> NoReturn:
        """A cancel signal or a Temporal cancellation: undo every started writing step and end ``cancelled``.
        Raises ApplicationError (type ``Cancelled``, non-retryable) after the signal, CancelledError after a
        Temporal cancellation."""
        reason = self._cancel.reason if self._cancel else (workflow.cancellation_reason() or "Temporal cancellation")
        self._state.cancel_reason = reason
        self._state.error = f"cancelled: {reason}"
        self._state.error_type = "Cancelled"
        await self._compensate()
        self._set_step("cancelled")
        await self._record_outcome("cancelled")
        if self._cancel is not None:
            raise ApplicationError(self._state.error, type="Cancelled", non_retryable=True) from None
        raise CancelledError(self._state.error) from None

    async def _on_failure(self, exc: ActivityError) -> NoReturn:
        """A step failed for good: end ``failed``. A business failure (a non-retryable ApplicationError) first
        undoes the writing steps that started and is raised again as a non-retryable ApplicationError of its
        type; a transient fault that outlived its timeout compensates nothing (a re-run resumes the same rows)
        and ``exc`` is raised again."""
        cause = exc.cause
        if isinstance(cause, ApplicationError) and self._cancel is None:
            self._state.error, self._state.error_type = cause.message, cause.type
            if cause.non_retryable or cause.type in NON_RETRYABLE:
                await self._compensate()
                self._set_step("failed")
                await self._record_outcome("failed")
                raise ApplicationError(cause.message, *cause.details, type=cause.type, non_retryable=True) from None
        else:
            self._state.error = str(cause or exc)
            self._state.error_type = type(cause or exc).__name__
        self._set_step("failed")
        await self._record_outcome("failed")
        raise exc

    # -- helpers ----------------------------------------------------------------------------------
    def _applied_updates(self) -> dict[str, Any]:
        assert self._input is not None
        return {u.field: getattr(self._input, u.field) for u in self._state.updates}

    def _stop_inflight(self) -> None:
        """Request cancellation of every running activity (each waits for its activity to acknowledge)."""
        for future in self._inflight:
            if not future.done():
                future.cancel()

    def _cancel_requested(self) -> bool:
        """A cancel signal arrived, or Temporal cancellation was requested."""
        return self._cancel is not None or workflow.cancellation_reason() is not None

    def _enter(self, step: str) -> None:
        if self._cancel_requested():
            raise _Cancelled()
        self._set_step(step)

    def _set_step(self, step: str) -> None:
        """Record ``step``; progress never decreases (terminal failed/cancelled keep the last value)."""
        self._state.step = step  # type: ignore[assignment]
        self._state.progress = max(self._state.progress, STEP_PROGRESS.get(step, 0))
        self._state.history.append(
            StepTransition(
                step=step,
                progress=self._state.progress,
                at=iso_z(workflow.now()),
            )
        )

    async def _step(
        self,
        step: str,
        activity: ActivityName,
        arg: Any,
        result_type: type | None = None,
        *,
        timeout: timedelta = DB_STEP_TIMEOUT,
    ) -> Any:
        """Enter ``step`` and run ``activity``; raise _Cancelled if a cancel arrived before or during it."""
        self._enter(step)
        self._started.append(step)
        result = await self._run(activity, arg, result_type, timeout=timeout)
        self._finish(step)
        return result

    def _finish(self, step: str) -> None:
        """A step's work is done: raise _Cancelled if a cancel arrived, else set progress just below the next step."""
        if self._cancel_requested():
            raise _Cancelled()
        next_index = STEP_ORDER.index(step) + 1
        self._state.progress = max(self._state.progress, STEP_PROGRESS[STEP_ORDER[next_index]] - 1)

    async def _run(
        self,
        activity: ActivityName,
        arg: Any,
        result_type: type | None = None,
        *,
        timeout: timedelta = DB_STEP_TIMEOUT,
        schedule_to_close: timedelta = SCHEDULE_TO_CLOSE,
    ) -> Any:
        """Run one activity that the cancel signal can interrupt; a cancellation (also one requested before
        it starts) becomes _Cancelled."""
        if self._cancel_requested():
            raise _Cancelled()
        future = asyncio.ensure_future(
            workflow.execute_activity(
                activity,
                arg,
                result_type=result_type,
                start_to_close_timeout=timeout,
                schedule_to_close_timeout=schedule_to_close,
                retry_policy=RETRY,
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        )
        self._inflight.add(future)
        try:
            return await future
        except (asyncio.CancelledError, ActivityError) as exc:
            if self._cancel_requested() and (isinstance(exc, asyncio.CancelledError) or is_cancelled_exception(exc)):
                raise _Cancelled() from None
            raise
        finally:
            self._inflight.discard(future)

    async def _track_customer(self, target: TrackingTarget) -> None:
        """Record the tenant as a customer of the management tenant: client, then contact and tag
        concurrently, then the contact's portal user. Runs beside setup_tenant_data and the welcome email.
        A failure is recorded in ``customer_tracking`` and swallowed; only a cancel propagates."""
        assert self._input is not None
        tracking = self._state.customer_tracking
        if self._input.skip_customer_tracking:
            tracking.status, tracking.error = "skipped", "skip_customer_tracking was requested"
            return
        self._started.append("tracking_customer")
        tracking.status = "running"
        args = self._tracking_args = CustomerTrackingArgs(target=target)
        options: dict[str, Any] = {"schedule_to_close": TRACKING_SCHEDULE_TO_CLOSE}
        try:
            client: CustomerClientResult = await self._run(
                ActivityName.CREATE_CUSTOMER_CLIENT, args, CustomerClientResult, **options
            )
            tracking.management_tenant_id = client.management_tenant_id
            if client.skipped_reason:
                tracking.status, tracking.error = "skipped", client.skipped_reason
                return
            tracking.customer_client_id, tracking.customer_client_name = client.client_id, client.client_name
            tracking.client_renamed = client.renamed
            args = self._tracking_args = args.model_copy(
                update={"management_tenant_id": client.management_tenant_id, "customer_client_id": client.client_id}
            )
            contact, tag_id = await asyncio.gather(
                self._run(ActivityName.CREATE_CUSTOMER_CONTACT, args, CustomerContactResult, **options),
                self._run(ActivityName.TAG_CUSTOMER_CLIENT, args, str, **options),
                return_exceptions=True,
            )
            if isinstance(tag_id, str):
                tracking.tag_id = tag_id
            if isinstance(contact, CustomerContactResult):
                tracking.customer_contact_id, tracking.contact_reused = contact.contact_id, contact.reused
            for outcome in (contact, tag_id):
                if isinstance(outcome, BaseException):
                    raise outcome
            args = args.model_copy(update={"customer_contact_id": tracking.customer_contact_id})
            tracking.portal_user_id = await self._run(ActivityName.CREATE_CUSTOMER_PORTAL_USER, args, str, **options)
            tracking.status = "ok"
        except ActivityError as exc:
            tracking.status = "failed"
            cause = exc.cause
            tracking.error = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)

    async def _compensate(self) -> None:
        """Undo every started writing step in reverse order (nothing when none started). Each undo is
        idempotent."""
        steps = [s for s in reversed(self._started) if s in COMPENSATIONS]
        if not steps or self._undo is None:
            return
        self._state.compensation.status = "running"
        for step in steps:
            step_args = self._tracking_args if step == "tracking_customer" else self._undo
            try:
                for undo in COMPENSATIONS[step]:
                    await workflow.execute_activity(
                        undo,
                        step_args,
                        start_to_close_timeout=DB_STEP_TIMEOUT,
                        schedule_to_close_timeout=SCHEDULE_TO_CLOSE,
                        retry_policy=RETRY,
                    )
                self._state.compensation.compensated.append(step)
            except ActivityError as exc:
                self._state.compensation.errors.append(f"{step}: {exc.cause or exc}")
        self._state.compensation.status = "failed" if self._state.compensation.errors else "completed"

    async def _record_outcome(self, outcome: str) -> None:
        """Count this provisioning in the worker's metrics (a local activity: replays never count twice).
        A metrics failure never affects the run."""
        started = workflow.info().start_time
        try:
            await workflow.execute_local_activity(
                ActivityName.RECORD_PROVISIONING_METRICS,
                ProvisioningOutcome(
                    outcome=outcome,  # type: ignore[arg-type]
                    duration_seconds=(workflow.now() - started).total_seconds(),
                    tracking_status=self._state.customer_tracking.status,
                ),
                start_to_close_timeout=timedelta(seconds=5),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError:
            workflow.logger.warning("could not record provisioning metrics")
