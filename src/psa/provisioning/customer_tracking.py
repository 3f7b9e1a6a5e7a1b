"""Customer tracking: record every provisioned tenant as a customer of the management tenant, as a client
(``properties.tenant_id`` = the tenant's id), a contact for its admin, the customer tag, and a client-portal
user for that contact (reference: the tenant customer-tracking activities; docs/provisioning.md, "Customer
tracking").

Decisions that differ from the reference (docs/decisions.md, "Provisioning"):
- the management tenant comes from ``PSA_MANAGEMENT_TENANT_ID`` or ``PSA_MANAGEMENT_TENANT_NAME`` (looked up by
  its unique slug), not a hard-coded name matched with ``first()``;
- every step is idempotent: row ids derive from the tracked tenant's id and the client is found again by
  ``properties.tenant_id`` (the reference stored the tenant's *name* there);
- name clashes do not lose the tracking: a client of another tenant with the same name makes ours
  "Name (slug)", and an existing management contact with the admin email is reused when it has no client
  or already belongs to ours;
- the portal user gets no usable password instead of sharing the admin's temporary one.

The step functions take a connection on the management tenant; the activities and ``reconcile`` (the
``psa customers reconcile`` command) both use them, so there is one code path.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Collection
from typing import Literal
from uuid import UUID, uuid5

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity

from psa.config import Settings
from psa.db.engine import tenant_transaction
from psa.domain import clients, contacts, seeds, tags, tenants, users, values
from psa.domain.errors import ConflictError, DomainError, DuplicateError, NotFoundError
from psa.provisioning.failures import activity_errors
from psa.provisioning.types import (
    ActivityName,
    CustomerClientResult,
    CustomerContactResult,
    CustomerTracking,
    CustomerTrackingArgs,
    TrackingTarget,
)

PRODUCT_TAGS = {"algadesk": "AlgaDesk Customer"}  # reference: the AlgaDesk workflow's customerTag


def customer_tag(settings: Settings, product_code: str) -> str:
    """Tag text for a customer of ``product_code``: ``CUSTOMER_TAG_NAME`` ("PSA Customer") for psa,
    "AlgaDesk Customer" for algadesk (reference: the per-product workflow configs)."""
    return PRODUCT_TAGS.get(product_code, settings.customer_tag_name)


# -- steps (each in the caller's transaction on the management tenant) ------------------------------
async def ensure_customer_client(
    conn: AsyncConnection, mgmt: UUID, target: TrackingTarget, *, client_id: UUID
) -> CustomerClientResult:
    """Find or create the customer client of ``target`` (reference: createCustomerClientActivity).

    Found again by ``properties.tenant_id``. A client of the same name that is not ours makes the new one
    "Name (slug)" (``renamed``). Raises ConflictError when that name is taken too.
    """
    existing = await clients.find_client_by_property(conn, mgmt, "tenant_id", target.tenant_id)
    if existing is not None:
        return _client_result(mgmt, existing, renamed=existing.client_name != target.company_name)
    product = target.product_code
    data = {
        "client_name": target.company_name,
        "client_type": "company",
        "notes": f"{product.upper()} customer - tenant {target.company_name} ({target.slug})",
        "properties": {"tenant_id": target.tenant_id, "tenant_slug": target.slug, "subscription_type": product},
    }
    options = {"client_id": client_id, "skip_tax_settings": True, "skip_email_suffix": True}
    try:
        return _client_result(mgmt, await clients.create_client(conn, mgmt, data, **options), renamed=False)
    except DuplicateError as exc:
        if exc.field == "properties.tenant_id":  # a concurrent tracking of this tenant (reconcile) won the race
            won = await clients.find_client_by_property(conn, mgmt, "tenant_id", target.tenant_id)
            if won is not None:
                return _client_result(mgmt, won, renamed=won.client_name != target.company_name)
        if exc.field != "client_name":
            raise
    renamed = f"{target.company_name} ({target.slug})"
    try:
        created = await clients.create_client(conn, mgmt, {**data, "client_name": renamed}, **options)
    except DuplicateError as exc:
        if exc.field != "client_name":
            raise
        raise ConflictError(
            f"management tenant already has clients named '{target.company_name}' and '{renamed}'",
            field="client_name",
        ) from None
    return _client_result(mgmt, created, renamed=True)


def _client_result(mgmt: UUID, client: clients.Client, *, renamed: bool) -> CustomerClientResult:
    return CustomerClientResult(
        management_tenant_id=str(mgmt), client_id=str(client.client_id), client_name=client.client_name, renamed=renamed
    )


async def ensure_customer_contact(
    conn: AsyncConnection, mgmt: UUID, target: TrackingTarget, *, customer_client_id: UUID, contact_id: UUID
) -> CustomerContactResult:
    """Find or create the contact for the tenant's admin, linked to the customer client
    (reference: createCustomerContactActivity, role 'Admin').

    An existing contact with the admin email as its primary address is reused when it has no client (it is
    linked to ours) or already belongs to ours. Raises ConflictError when it belongs to another client or the
    email is another contact's additional address; NotFoundError when the tenant has no admin to record.
    """
    if not target.admin_email:
        raise NotFoundError(f"tenant '{target.slug}' has no admin user to record as a contact", field="admin_email")
    email = values.normalize_email(target.admin_email, field="admin_email")
    existing = await contacts.get_contact_by_email(conn, mgmt, email)
    if existing is None:
        full_name = " ".join(p for p in (target.admin_first_name, target.admin_last_name) if p) or email
        created = await contacts.create_contact(
            conn,
            mgmt,
            {
                "full_name": full_name,
                "email": email,
                "client_id": customer_client_id,
                "role": "Admin",
                "is_client_admin": True,
                "notes": f"Primary admin of tenant {target.company_name} ({target.slug})",
            },
            contact_id=contact_id,
        )
        return CustomerContactResult(contact_id=str(created.contact_name_id))
    if existing.email != email:
        raise ConflictError(
            f"the admin email is an additional email of management contact {existing.contact_name_id}",
            field="admin_email",
        )
    if existing.client_id is None:
        await contacts.update_contact(conn, mgmt, existing.contact_name_id, {"client_id": customer_client_id})
    elif existing.client_id != customer_client_id:
        raise ConflictError(
            f"the admin email is already a contact of another management client ({existing.client_id})",
            field="admin_email",
        )
    return CustomerContactResult(
        contact_id=str(existing.contact_name_id), reused=existing.contact_name_id != contact_id
    )


async def tag_customer(
    conn: AsyncConnection, mgmt: UUID, *, customer_client_id: UUID, tag_text: str
) -> tags.TagMapping:
    """Apply the customer tag to the customer client, created by the management tenant's service user
    (reference: tagCustomerClientActivity, which stored ``created_by`` NULL). Idempotent."""
    service_user = await users.ensure_service_user(conn, mgmt)
    return await tags.apply_tag(
        conn, mgmt, tag_text=tag_text, tagged_id=customer_client_id, tagged_type="client", created_by=service_user
    )


async def ensure_portal_user(conn: AsyncConnection, mgmt: UUID, *, contact_id: UUID, user_id: UUID) -> users.PortalUser:
    """The client-portal user of the customer contact, as client admin (reference: createPortalUser with
    isClientAdmin true). Reuses one already linked to the contact; DuplicateError when the email is another
    contact's portal login."""
    return await users.create_portal_user(
        conn, tenant=mgmt, user_id=user_id, contact_id=contact_id, is_client_admin=True
    )


# -- compensation (each idempotent, a no-op when its step wrote nothing) -----------------------------
async def remove_portal_user(conn: AsyncConnection, mgmt: UUID, user_id: UUID) -> int:
    """Delete the portal user this tracking created (a reused one has another id and stays)."""
    return await users.delete_user(conn, tenant=mgmt, user_id=user_id)


async def untag_customer(conn: AsyncConnection, mgmt: UUID, customer_client_id: UUID | None, tag_text: str) -> int:
    """Remove the customer tag from the customer client; the tag definition stays (other customers use it)."""
    if customer_client_id is None:
        return 0
    definition = await tags.ensure_tag_definition(conn, mgmt, tag_text, "client")
    return await tags.remove_tag(conn, mgmt, tag_id=definition.tag_id, tagged_id=customer_client_id)


async def remove_customer_contact(
    conn: AsyncConnection, mgmt: UUID, customer_client_id: UUID | None, contact_id: UUID
) -> int:
    """Delete the contact this tracking created; unlink (not delete) reused contacts from the customer client,
    so removing the client does not cascade to them. Returns contacts deleted or unlinked."""
    deleted = await contacts.delete_contact(conn, mgmt, contact_id)
    if customer_client_id is None:
        return deleted
    return deleted + await contacts.detach_from_client(conn, mgmt, customer_client_id)


async def remove_customer_client(conn: AsyncConnection, mgmt: UUID, tenant_id: str) -> int:
    """Delete the tracked tenant's customer client (found by ``properties.tenant_id``); ``delete_client`` also
    removes the tag mappings on it, which have no foreign key to cascade. Returns rows deleted."""
    client = await clients.find_client_by_property(conn, mgmt, "tenant_id", tenant_id)
    if client is None:
        return 0
    return await clients.delete_client(conn, mgmt, client.client_id)


# -- activities ---------------------------------------------------------------------------------------
class CustomerTrackingActivities:
    """The customer-tracking activities of ``TenantCreationWorkflow`` and their compensations."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def all(self) -> list[Callable]:
        return [
            self.create_customer_client,
            self.create_customer_contact,
            self.tag_customer_client,
            self.create_customer_portal_user,
            self.undo_create_customer_portal_user,
            self.undo_tag_customer_client,
            self.undo_create_customer_contact,
            self.undo_create_customer_client,
        ]

    async def _management_tenant(self, conn: AsyncConnection, args: CustomerTrackingArgs) -> UUID:
        if args.management_tenant_id:
            return UUID(args.management_tenant_id)
        return await tenants.resolve_management_tenant(conn, self.settings)

    @activity.defn(name=ActivityName.CREATE_CUSTOMER_CLIENT)
    @activity_errors
    async def create_customer_client(self, args: CustomerTrackingArgs) -> CustomerClientResult:
        """Resolve the management tenant and find or create the customer client. Returns ``skipped_reason``
        when tracking is disabled (``ENABLE_CUSTOMER_TRACKING=false``) or the tenant is the management tenant.
        Raises NotFoundError when the management tenant is missing, ConflictError on a name clash."""
        if not self.settings.enable_customer_tracking:
            return CustomerClientResult(skipped_reason="customer tracking is disabled (ENABLE_CUSTOMER_TRACKING)")
        async with tenant_transaction(self.engine, None) as conn:
            mgmt = await self._management_tenant(conn, args)
        if str(mgmt) == args.target.tenant_id:
            return CustomerClientResult(management_tenant_id=str(mgmt), skipped_reason="this is the management tenant")
        async with tenant_transaction(self.engine, mgmt) as conn:
            return await ensure_customer_client(conn, mgmt, args.target, client_id=UUID(args.derived_id("client")))

    @activity.defn(name=ActivityName.CREATE_CUSTOMER_CONTACT)
    @activity_errors
    async def create_customer_contact(self, args: CustomerTrackingArgs) -> CustomerContactResult:
        """Find or create the admin's contact in the management tenant, linked to the customer client."""
        mgmt, client_id = _required(args.management_tenant_id), _required(args.customer_client_id)
        async with tenant_transaction(self.engine, mgmt) as conn:
            return await ensure_customer_contact(
                conn, mgmt, args.target, customer_client_id=client_id, contact_id=UUID(args.derived_id("contact"))
            )

    @activity.defn(name=ActivityName.TAG_CUSTOMER_CLIENT)
    @activity_errors
    async def tag_customer_client(self, args: CustomerTrackingArgs) -> str:
        """Apply the customer tag; returns the tag definition id."""
        mgmt, client_id = _required(args.management_tenant_id), _required(args.customer_client_id)
        async with tenant_transaction(self.engine, mgmt) as conn:
            tag_text = customer_tag(self.settings, args.target.product_code)
            mapping = await tag_customer(conn, mgmt, customer_client_id=client_id, tag_text=tag_text)
        return str(mapping.tag_id)

    @activity.defn(name=ActivityName.CREATE_CUSTOMER_PORTAL_USER)
    @activity_errors
    async def create_customer_portal_user(self, args: CustomerTrackingArgs) -> str:
        """Find or create the contact's client-portal user; returns its id."""
        mgmt, contact_id = _required(args.management_tenant_id), _required(args.customer_contact_id)
        async with tenant_transaction(self.engine, mgmt) as conn:
            portal = await ensure_portal_user(
                conn, mgmt, contact_id=contact_id, user_id=UUID(args.derived_id("portal_user"))
            )
        return str(portal.user_id)

    @activity.defn(name=ActivityName.UNDO_CREATE_CUSTOMER_PORTAL_USER)
    @activity_errors
    async def undo_create_customer_portal_user(self, args: CustomerTrackingArgs) -> int:
        async with self._compensating(args) as (conn, mgmt):
            return 0 if mgmt is None else await remove_portal_user(conn, mgmt, UUID(args.derived_id("portal_user")))

    @activity.defn(name=ActivityName.UNDO_TAG_CUSTOMER_CLIENT)
    @activity_errors
    async def undo_tag_customer_client(self, args: CustomerTrackingArgs) -> int:
        async with self._compensating(args) as (conn, mgmt):
            if mgmt is None:
                return 0
            client = await clients.find_client_by_property(conn, mgmt, "tenant_id", args.target.tenant_id)
            tag_text = customer_tag(self.settings, args.target.product_code)
            return await untag_customer(conn, mgmt, client.client_id if client else None, tag_text)

    @activity.defn(name=ActivityName.UNDO_CREATE_CUSTOMER_CONTACT)
    @activity_errors
    async def undo_create_customer_contact(self, args: CustomerTrackingArgs) -> int:
        async with self._compensating(args) as (conn, mgmt):
            if mgmt is None:
                return 0
            client = await clients.find_client_by_property(conn, mgmt, "tenant_id", args.target.tenant_id)
            contact_id = UUID(args.derived_id("contact"))
            return await remove_customer_contact(conn, mgmt, client.client_id if client else None, contact_id)

    @activity.defn(name=ActivityName.UNDO_CREATE_CUSTOMER_CLIENT)
    @activity_errors
    async def undo_create_customer_client(self, args: CustomerTrackingArgs) -> int:
        async with self._compensating(args) as (conn, mgmt):
            return 0 if mgmt is None else await remove_customer_client(conn, mgmt, args.target.tenant_id)

    @contextlib.asynccontextmanager
    async def _compensating(self, args: CustomerTrackingArgs) -> AsyncIterator[tuple[AsyncConnection, UUID | None]]:
        """One transaction on the management tenant for a compensation; ``mgmt`` is None when no management
        tenant exists, so there is nothing to undo."""
        async with tenant_transaction(self.engine, args.management_tenant_id) as conn:
            try:
                mgmt = await self._management_tenant(conn, args)
            except NotFoundError:
                mgmt = None
            yield conn, mgmt


def _required(value: str | None) -> UUID:
    if value is None:
        raise ValueError("an earlier customer-tracking step did not return its id")
    return UUID(value)


# -- reconcile ------------------------------------------------------------------------------------------
Action = Literal["ok", "created", "repaired", "would create", "would repair", "failed"]


@dataclasses.dataclass
class ReconcileRow:
    """One tenant's line in ``psa customers reconcile``: what was (or would be) done, and the outcome."""

    tenant_id: str
    slug: str
    company_name: str
    action: Action
    missing: list[str]
    tracking: CustomerTracking


async def tracking_targets(conn: AsyncConnection, mgmt: UUID) -> list[TrackingTarget]:
    """Every tenant except the management tenant, oldest first, with its first Admin user (the customer contact)."""
    return [
        TrackingTarget(
            tenant_id=str(row.tenant),
            company_name=row.client_name,
            slug=row.slug,
            product_code=row.product_code,
            admin_email=row.admin_email,
            admin_first_name=row.admin_first_name,
            admin_last_name=row.admin_last_name,
        )
        for row in reversed(await tenants.list_tenants(conn, limit=None))
        if row.tenant != mgmt
    ]


async def _inspect(
    conn: AsyncConnection, mgmt: UUID, target: TrackingTarget, tag_text: str
) -> tuple[clients.Client | None, list[str]]:
    """The tenant's customer client (or None) and which of client, contact, tag, portal_user it lacks."""
    client = await clients.find_client_by_property(conn, mgmt, "tenant_id", target.tenant_id)
    if client is None:
        return None, ["client", "contact", "tag", "portal_user"]
    missing: list[str] = []
    contact = await contacts.get_contact_by_email(conn, mgmt, target.admin_email) if target.admin_email else None
    if contact is None or contact.client_id != client.client_id:
        missing.append("contact")
    if not any(m.tag_text == tag_text for m in await tags.tags_for(conn, mgmt, client.client_id, "client")):
        missing.append("tag")
    if contact is None or await users.find_portal_user(conn, mgmt, contact.contact_name_id) is None:
        missing.append("portal_user")
    return client, missing


async def track_customer(engine: AsyncEngine, mgmt: UUID, target: TrackingTarget, tag_text: str) -> CustomerTracking:
    """Run every tracking step for ``target`` in two transactions on the management tenant: client and tag,
    then contact and portal user. Never raises for a domain error: the outcome is ``ok``, or ``failed`` with
    the error and whatever the first stage recorded (the workflow keeps partial records the same way)."""
    args = CustomerTrackingArgs(target=target, management_tenant_id=str(mgmt))
    tracking = CustomerTracking(status="running", management_tenant_id=str(mgmt))
    try:
        async with tenant_transaction(engine, mgmt) as conn:
            client = await ensure_customer_client(conn, mgmt, target, client_id=UUID(args.derived_id("client")))
            mapping = await tag_customer(conn, mgmt, customer_client_id=UUID(client.client_id), tag_text=tag_text)
        tracking.customer_client_id, tracking.customer_client_name = client.client_id, client.client_name
        tracking.client_renamed, tracking.tag_id = client.renamed, str(mapping.tag_id)
        async with tenant_transaction(engine, mgmt) as conn:
            contact = await ensure_customer_contact(
                conn,
                mgmt,
                target,
                customer_client_id=UUID(client.client_id),
                contact_id=UUID(args.derived_id("contact")),
            )
            portal = await ensure_portal_user(
                conn, mgmt, contact_id=UUID(contact.contact_id), user_id=UUID(args.derived_id("portal_user"))
            )
    except DomainError as exc:
        tracking.status, tracking.error = "failed", exc.message
        return tracking
    tracking.customer_contact_id, tracking.contact_reused = contact.contact_id, contact.reused
    tracking.portal_user_id, tracking.status = str(portal.user_id), "ok"
    return tracking


async def reconcile(
    engine: AsyncEngine, settings: Settings, *, dry_run: bool = False, only: Collection[str] | None = None
) -> list[ReconcileRow]:
    """Backfill the customer record of every tenant that lacks one, and repair incomplete ones (a failed
    tracking). Idempotent: a second run finds everything ``ok``. With ``dry_run`` nothing is written and
    the actions read "would create" / "would repair". ``only`` limits the run to those tenant ids or slugs.

    Raises NotFoundError when the management tenant is missing.
    """
    async with tenant_transaction(engine, None) as conn:
        mgmt = await tenants.resolve_management_tenant(conn, settings)
        targets = await tracking_targets(conn, mgmt)
    if only is not None:
        wanted = set(only)
        targets = [t for t in targets if t.tenant_id in wanted or t.slug in wanted]
    rows: list[ReconcileRow] = []
    for target in targets:
        tag_text = customer_tag(settings, target.product_code)
        async with tenant_transaction(engine, mgmt) as conn:
            client, missing = await _inspect(conn, mgmt, target, tag_text)
        found = (
            {"customer_client_id": str(client.client_id), "customer_client_name": client.client_name} if client else {}
        )
        if not missing:
            action: Action = "ok"
            tracking = CustomerTracking(status="ok", management_tenant_id=str(mgmt), **found)
        elif dry_run:
            action = "would create" if "client" in missing else "would repair"
            tracking = CustomerTracking(status="pending", management_tenant_id=str(mgmt), **found)
        else:
            tracking = await track_customer(engine, mgmt, target, tag_text)
            action = "failed" if tracking.status == "failed" else "created" if "client" in missing else "repaired"
        rows.append(ReconcileRow(target.tenant_id, target.slug, target.company_name, action, missing, tracking))
    return rows


# -- management tenant ----------------------------------------------------------------------------------
MANAGEMENT_NAMESPACE = UUID("0c9a8f6e-7a53-4d1b-b2f4-6c1e9d3a5b80")


@dataclasses.dataclass(frozen=True)
class ManagementTenant:
    """``bootstrap_management_tenant`` outcome: the tenant, its slug, and whether this call created it."""

    tenant: UUID
    slug: str
    name: str
    created: bool


async def bootstrap_management_tenant(engine: AsyncEngine, name: str, *, email: str) -> ManagementTenant:
    """Create the management tenant ``name`` (tenant row, its own client, seeds, settings, service user) in one
    transaction, or return the existing tenant with that name's slug. Idempotent; the id is derived from the
    slug. Raises ValidationError for a blank or over-long name or an invalid email."""
    name = values.clean_name(name, field="name") or ""
    slug = values.tenant_slug(name)
    email = values.normalize_email(email, field="email")
    tenant = uuid5(MANAGEMENT_NAMESPACE, slug)
    async with tenant_transaction(engine, tenant) as conn:
        existing = await tenants.get_tenant_by_slug(conn, slug)
        if existing is not None:
            return ManagementTenant(existing.tenant, slug, existing.client_name, created=False)
        await tenants.create_tenant(conn, tenant=tenant, slug=slug, company_name=name, email=email)
        await tenants.create_default_client(
            conn,
            tenant=tenant,
            client_id=uuid5(MANAGEMENT_NAMESPACE, f"{slug}/client"),
            location_id=uuid5(MANAGEMENT_NAMESPACE, f"{slug}/location"),
            client_name=name,
            email=email,
        )
        await seeds.seed_tenant(conn, tenant)
        await tenants.setup_tenant_settings(conn, tenant=tenant, email_provider="smtp")
        await users.ensure_service_user(conn, tenant)
    return ManagementTenant(tenant, slug, name, created=True)
