"""The domain events of the contacts actions: CONTACT_CREATED, CONTACT_UPDATED (with field diffs) and
CONTACT_ARCHIVED (reference: domainEventBuilders; docs/automation.md, "Events")."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psa.automation.actions.common import camel, compact, jsonable, same
from psa.automation.registry import ActionContext
from psa.domain.contacts import Contact
from psa.timeutil import iso_z


def _diffable(contact: Contact) -> dict[str, Any]:
    """What CONTACT_UPDATED compares: the editable fields, type labels, and the phone and additional email rows
    without their row ids and timestamps."""
    data = contact.model_dump(
        include={
            "full_name",
            "email",
            "client_id",
            "role",
            "notes",
            "is_inactive",
            "primary_email_type",
            "primary_email_canonical_type",
            "primary_email_custom_type",
            "default_phone_number",
        }
    )
    data["phone_numbers"] = [p.model_dump(exclude={"contact_phone_number_id"}) for p in contact.phone_numbers]
    data["additional_email_addresses"] = [
        e.model_dump(exclude={"contact_additional_email_address_id"}) for e in contact.additional_email_addresses
    ]
    return data


def _camel_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{camel(k): jsonable(v) for k, v in row.items()} for row in rows]


def contact_created_payload(contact: Contact, actor: UUID) -> dict[str, Any]:
    """CONTACT_CREATED: ``{contactId, clientId?, fullName, email?, primaryEmailCanonicalType,
    primaryEmailCustomTypeId?, primaryEmailCustomType?, primaryEmailType?, additionalEmailAddresses?,
    phoneNumbers?, defaultPhoneNumber?, defaultPhoneType?, createdByUserId, createdAt}``."""
    data = _diffable(contact)
    payload = compact(
        {
            "contactId": str(contact.contact_name_id),
            "clientId": str(contact.client_id) if contact.client_id else None,
            "fullName": contact.full_name,
            "email": contact.email,
            "primaryEmailCustomTypeId": str(contact.primary_email_custom_type_id)
            if contact.primary_email_custom_type_id
            else None,
            "primaryEmailCustomType": contact.primary_email_custom_type,
            "primaryEmailType": contact.primary_email_type,
            "additionalEmailAddresses": _camel_rows(data["additional_email_addresses"]),
            "phoneNumbers": _camel_rows(data["phone_numbers"]),
            "defaultPhoneNumber": contact.default_phone_number,
            "defaultPhoneType": contact.default_phone_type,
            "createdByUserId": str(actor),
            "createdAt": iso_z(contact.created_at),
        }
    )
    return {**payload, "primaryEmailCanonicalType": contact.primary_email_canonical_type}


def contact_updated_payload(before: Contact, after: Contact, actor: UUID) -> dict[str, Any]:
    """CONTACT_UPDATED: ``{contactId, clientId?, updatedByUserId, updatedAt, updatedFields?, changes?}`` with
    camelCase paths and ``changes[path] = {previous, new}`` for every compared field that changed."""
    old, new = _diffable(before), _diffable(after)
    changes = {
        camel(k): {"previous": jsonable(old[k]), "new": jsonable(new[k])} for k in old if not same(old[k], new[k])
    }
    client_id = after.client_id or before.client_id
    return compact(
        {
            "contactId": str(after.contact_name_id),
            "clientId": str(client_id) if client_id else None,
            "updatedByUserId": str(actor),
            "updatedAt": iso_z(after.updated_at),
            "updatedFields": list(changes),
            "changes": changes,
        }
    )


async def emit_archived(ctx: ActionContext, contact: Contact, reason: str | None = None) -> None:
    """CONTACT_ARCHIVED ``{contactId, clientId?, archivedByUserId, archivedAt, reason?}``, keyed by the
    contact and the time it became inactive."""
    payload = compact(
        {
            "contactId": str(contact.contact_name_id),
            "clientId": str(contact.client_id) if contact.client_id else None,
            "archivedByUserId": str(ctx.actor_user_id),
            "archivedAt": iso_z(contact.updated_at),
            "reason": reason,
        }
    )
    key = f"contact_archived:{contact.contact_name_id}:{iso_z(contact.updated_at)}"
    await ctx.emit("CONTACT_ARCHIVED", payload, key, contact.updated_at)


async def emit_updated(ctx: ActionContext, before: Contact, after: Contact) -> None:
    """CONTACT_UPDATED when a field really changed, and CONTACT_ARCHIVED when the contact became inactive."""
    payload = contact_updated_payload(before, after, ctx.actor_user_id)
    if payload.get("updatedFields"):
        key = f"contact_updated:{after.contact_name_id}:{iso_z(after.updated_at)}"
        await ctx.emit("CONTACT_UPDATED", payload, key, after.updated_at)
    if after.is_inactive and not before.is_inactive:
        await emit_archived(ctx, after)
