"""Every domain event psa emits, as a type (reference: domainEventBuilders; docs/automation.md, "Events").

An event is a pydantic model: its ``event_type``, its payload fields (snake_case here, camelCase in the JSON
payload), and its idempotency ``key()`` (unique per tenant: the outbox never queues a key twice). Handlers
build one and hand it to ``ctx.emit(event)``; the action contract adds ``tenantId``, ``occurredAt``,
``actorType`` and ``actorUserId`` and writes it to the outbox with the action's own writes
(docs/architecture.md, "Events and the outbox").

Payload rules shared by every event: timestamps are ISO-8601 UTC with microseconds and ``Z`` (``iso_z``), ids
are strings, and a field whose value is empty (None, ``""``, ``[]``, ``{}``; not ``False`` or ``0``) is left
out, except the fields an event lists in ``always_present``. ``EVENT_TYPES`` lists them all. An event occurs
when the action emits it, unless ``occurred_at()`` says otherwise.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

import pydantic_core
from pydantic import BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel

from psa.domain.clients import Client
from psa.domain.contacts import Contact
from psa.domain.interactions import Interaction
from psa.domain.tags import TagMapping
from psa.timeutil import iso_z

BODY_PREVIEW_MAX = 200

Timestamp = Annotated[datetime, PlainSerializer(iso_z, return_type=str)]
"""A payload timestamp, serialised by ``iso_z``."""


class Event(BaseModel, abc.ABC):
    """A domain event: ``event_type``, the payload fields and the idempotency ``key()``. A field declared with
    ``Field(exclude=True)`` feeds the key without being part of the payload."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    event_type: ClassVar[str]
    always_present: ClassVar[frozenset[str]] = frozenset()
    """Payload keys kept even when their value is empty."""

    @abc.abstractmethod
    def key(self) -> str:
        """The event's idempotency key."""

    def occurred_at(self) -> datetime | None:
        """When it happened, for ``occurredAt``; None: when the action emits it."""
        return None

    def payload(self) -> dict[str, Any]:
        """The JSON payload: camelCase keys, empty values left out (but those of ``always_present``)."""
        dumped = self.model_dump(mode="json", by_alias=True)
        return {k: v for k, v in dumped.items() if k in self.always_present or not _empty(v)}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _camel(key: str) -> str:
    """``snake_case`` -> ``camelCase`` for a change path (``external_ref`` -> ``externalRef``)."""
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), key)


def _jsonable(value: Any) -> Any:
    """``value`` as JSON data, datetimes by ``iso_z``."""
    if isinstance(value, datetime):
        return iso_z(value)
    return pydantic_core.to_jsonable_python(value)


def _same(a: Any, b: Any) -> bool:
    return pydantic_core.to_json(_jsonable(a)) == pydantic_core.to_json(_jsonable(b))


def _change(old: Any, new: Any) -> dict[str, Any]:
    return {"previous": _jsonable(old), "new": _jsonable(new)}


_NOT_DIFFED = ("tenant", "updated_at", "created_at", "properties")
"""Client columns CLIENT_UPDATED does not diff by name (``properties`` is diffed key by key)."""


class ClientCreated(Event):
    """CLIENT_CREATED (clients.create): ``{clientId, clientName, createdByUserId, createdAt, status}``."""

    event_type = "CLIENT_CREATED"

    client_id: UUID
    client_name: str
    created_by_user_id: UUID
    created_at: Timestamp
    status: Literal["active", "inactive"]

    @classmethod
    def of(cls, client: Client, actor: UUID) -> ClientCreated:
        """The event of a client just created by ``actor``."""
        return cls(
            client_id=client.client_id,
            client_name=client.client_name,
            created_by_user_id=actor,
            created_at=client.created_at,
            status="inactive" if client.is_inactive else "active",
        )

    def key(self) -> str:
        return f"client_created:{self.client_id}"


class ClientUpdated(Event):
    """CLIENT_UPDATED (clients.update, when a written column really changed): ``{clientId, updatedAt?,
    updatedFields?, changes?}`` with ``changes[path] = {previous, new}``."""

    event_type = "CLIENT_UPDATED"

    client_id: UUID
    updated_at: Timestamp | None
    updated_fields: list[str]
    changes: dict[str, Any]

    @classmethod
    def of(cls, before: Client, after: Client, keys: Iterable[str]) -> ClientUpdated:
        """The changes among the columns ``keys``: ``properties`` (when among them) diffed key by key into
        ``properties.{camelKey}`` paths, then the other keys (except tenant / created_at / updated_at) into
        camelCase paths."""
        keys = list(keys)
        old, new = before.model_dump(), after.model_dump()
        changes: dict[str, Any] = {}
        if "properties" in keys:
            old_props, new_props = old.get("properties") or {}, new.get("properties") or {}
            for key in [*old_props, *(k for k in new_props if k not in old_props)]:
                if not _same(old_props.get(key), new_props.get(key)):
                    changes[f"properties.{_camel(key)}"] = _change(old_props.get(key), new_props.get(key))
        for key in keys:
            if key not in _NOT_DIFFED and not _same(old.get(key), new.get(key)):
                changes[_camel(key)] = _change(old.get(key), new.get(key))
        return cls(
            client_id=after.client_id, updated_at=after.updated_at, updated_fields=list(changes), changes=changes
        )

    def key(self) -> str:
        return f"client_updated:{self.client_id}:{iso_z(self.updated_at)}"


class ClientArchived(Event):
    """CLIENT_ARCHIVED (clients.archive of an active client): ``{clientId, archivedByUserId, archivedAt,
    reason?}``."""

    event_type = "CLIENT_ARCHIVED"

    client_id: UUID
    archived_by_user_id: UUID
    archived_at: Timestamp
    reason: str | None = None

    def key(self) -> str:
        return f"client_archived:{self.client_id}:{iso_z(self.archived_at)}"


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
    return [{_camel(k): _jsonable(v) for k, v in row.items()} for row in rows]


class ContactCreated(Event):
    """CONTACT_CREATED (contacts.create, contacts.upsert when it creates): ``{contactId, clientId?, fullName,
    email?, primaryEmailCanonicalType, primaryEmailCustomTypeId?, primaryEmailCustomType?, primaryEmailType?,
    additionalEmailAddresses?, phoneNumbers?, defaultPhoneNumber?, defaultPhoneType?, createdByUserId,
    createdAt}``; ``primaryEmailCanonicalType`` is always present, null or not. It occurred at ``createdAt``."""

    event_type = "CONTACT_CREATED"
    always_present = frozenset({"primaryEmailCanonicalType"})

    contact_id: UUID
    client_id: UUID | None
    full_name: str
    email: str | None
    primary_email_canonical_type: str | None
    primary_email_custom_type_id: UUID | None
    primary_email_custom_type: str | None
    primary_email_type: str | None
    additional_email_addresses: list[dict[str, Any]]
    phone_numbers: list[dict[str, Any]]
    default_phone_number: str | None
    default_phone_type: str | None
    created_by_user_id: UUID
    created_at: Timestamp

    @classmethod
    def of(cls, contact: Contact, actor: UUID) -> ContactCreated:
        """The event of a contact just created by ``actor``; phone and email rows without their row ids."""
        data = _diffable(contact)
        return cls(
            contact_id=contact.contact_name_id,
            client_id=contact.client_id,
            full_name=contact.full_name,
            email=contact.email,
            primary_email_canonical_type=contact.primary_email_canonical_type,
            primary_email_custom_type_id=contact.primary_email_custom_type_id,
            primary_email_custom_type=contact.primary_email_custom_type,
            primary_email_type=contact.primary_email_type,
            additional_email_addresses=_camel_rows(data["additional_email_addresses"]),
            phone_numbers=_camel_rows(data["phone_numbers"]),
            default_phone_number=contact.default_phone_number,
            default_phone_type=contact.default_phone_type,
            created_by_user_id=actor,
            created_at=contact.created_at,
        )

    def key(self) -> str:
        return f"contact_created:{self.contact_id}"

    def occurred_at(self) -> datetime:
        return self.created_at


class ContactUpdated(Event):
    """CONTACT_UPDATED (contacts.update, contacts.upsert when it updates; only when a field really changed):
    ``{contactId, clientId?, updatedByUserId, updatedAt, updatedFields?, changes?}`` with camelCase paths and
    ``changes[path] = {previous, new}``. It occurred at ``updatedAt``."""

    event_type = "CONTACT_UPDATED"

    contact_id: UUID
    client_id: UUID | None
    updated_by_user_id: UUID
    updated_at: Timestamp
    updated_fields: list[str]
    changes: dict[str, Any]

    @classmethod
    def of(cls, before: Contact, after: Contact, actor: UUID) -> ContactUpdated:
        """Every compared field (``_diffable``) that changed from ``before`` to ``after``."""
        old, new = _diffable(before), _diffable(after)
        changes = {_camel(k): _change(old[k], new[k]) for k in old if not _same(old[k], new[k])}
        return cls(
            contact_id=after.contact_name_id,
            client_id=after.client_id or before.client_id,
            updated_by_user_id=actor,
            updated_at=after.updated_at,
            updated_fields=list(changes),
            changes=changes,
        )

    def key(self) -> str:
        return f"contact_updated:{self.contact_id}:{iso_z(self.updated_at)}"

    def occurred_at(self) -> datetime:
        return self.updated_at


class ContactArchived(Event):
    """CONTACT_ARCHIVED (a contact became inactive): ``{contactId, clientId?, archivedByUserId, archivedAt,
    reason?}``, keyed by the contact and the time it became inactive, which is when it occurred."""

    event_type = "CONTACT_ARCHIVED"

    contact_id: UUID
    client_id: UUID | None
    archived_by_user_id: UUID
    archived_at: Timestamp
    reason: str | None = None

    @classmethod
    def of(cls, contact: Contact, actor: UUID, reason: str | None = None) -> ContactArchived:
        """The event of ``contact`` (as it is now, inactive) archived by ``actor``."""
        return cls(
            contact_id=contact.contact_name_id,
            client_id=contact.client_id,
            archived_by_user_id=actor,
            archived_at=contact.updated_at,
            reason=reason,
        )

    def key(self) -> str:
        return f"contact_archived:{self.contact_id}:{iso_z(self.archived_at)}"

    def occurred_at(self) -> datetime:
        return self.archived_at


def body_preview(body: Any) -> str:
    """Whitespace collapsed and trimmed; longer than 200 characters: the first 200 and ``…``."""
    value = body if isinstance(body, str) else pydantic_core.to_json(body).decode()
    collapsed = " ".join(value.split())
    return collapsed if len(collapsed) <= BODY_PREVIEW_MAX else collapsed[:BODY_PREVIEW_MAX] + "…"


class NoteCreated(Event):
    """NOTE_CREATED (clients.add_note, contacts.add_note, when the notes document is created): ``{noteId,
    entityType, entityId, createdByUserId, createdAt, visibility, bodyPreview}``; ``noteId`` is the document."""

    event_type = "NOTE_CREATED"

    note_id: UUID
    entity_type: Literal["client", "contact"]
    entity_id: UUID
    created_by_user_id: UUID
    created_at: Timestamp
    visibility: Literal["internal"] = "internal"
    body_preview: str

    @classmethod
    def of(
        cls,
        document_id: UUID,
        entity_type: Literal["client", "contact"],
        entity_id: UUID,
        actor: UUID,
        created_at: datetime,
        body: str,
    ) -> NoteCreated:
        """The event of the notes document ``document_id`` created with its first note ``body``."""
        return cls(
            note_id=document_id,
            entity_type=entity_type,
            entity_id=entity_id,
            created_by_user_id=actor,
            created_at=created_at,
            body_preview=body_preview(body),
        )

    def key(self) -> str:
        return f"note_created:{self.entity_type}:{self.entity_id}:{self.note_id}"


CHANNELS = (("email", "email"), ("call", "phone"), ("phone", "phone"), ("meeting", "meeting"), ("note", "note"))
"""(substring of the type name, channel), first match wins."""


def interaction_channel(type_name: str | None) -> str:
    """``email`` / ``phone`` (call, phone) / ``meeting`` / ``note`` from the type name, else ``other``."""
    name = (type_name or "").lower()
    return next((channel for needle, channel in CHANNELS if needle in name), "other")


class InteractionLogged(Event):
    """INTERACTION_LOGGED (clients.add_interaction, contacts.add_interaction, crm.schedule_activity,
    crm.complete_activity's follow-up): ``{interactionId, clientId, contactId?, interactionType,
    interactionTypeId, channel, interactionOccurredAt, loggedByUserId, subject?, outcome?}``; the crm.* actions
    add ``outcome`` (the status name)."""

    event_type = "INTERACTION_LOGGED"

    interaction_id: UUID
    client_id: UUID | None
    contact_id: UUID | None
    interaction_type: str
    interaction_type_id: UUID
    channel: str
    interaction_occurred_at: Timestamp
    logged_by_user_id: UUID
    subject: str | None
    outcome: str | None = None

    @classmethod
    def of(
        cls, interaction: Interaction, type_name: str | None, actor: UUID, outcome: str | None = None
    ) -> InteractionLogged:
        """The event of ``interaction`` of the type named ``type_name`` (blank: "interaction"), logged by
        ``actor``; the channel follows from the type name."""
        interaction_type = (type_name or "").strip() or "interaction"
        return cls(
            interaction_id=interaction.interaction_id,
            client_id=interaction.client_id,
            contact_id=interaction.contact_name_id,
            interaction_type=interaction_type,
            interaction_type_id=interaction.type_id,
            channel=interaction_channel(interaction_type),
            interaction_occurred_at=interaction.interaction_date,
            logged_by_user_id=actor,
            subject=interaction.title.strip() or None,
            outcome=outcome,
        )

    def key(self) -> str:
        return f"interaction_logged:{self.interaction_id}"


class TagDefinitionCreated(Event):
    """TAG_DEFINITION_CREATED (crm.tag_activity, per new tag definition): ``{tagId, tagName, createdByUserId,
    createdAt}``."""

    event_type = "TAG_DEFINITION_CREATED"

    tag_id: UUID
    tag_name: str
    created_by_user_id: UUID
    created_at: Timestamp

    @classmethod
    def of(cls, mapping: TagMapping, actor: UUID) -> TagDefinitionCreated:
        """The definition of ``mapping``'s tag, created by ``actor`` when it was first applied."""
        return cls(
            tag_id=mapping.tag_id, tag_name=mapping.tag_text, created_by_user_id=actor, created_at=mapping.created_at
        )

    def key(self) -> str:
        return f"tag_definition_created:{self.tag_id}"


class TagApplied(Event):
    """TAG_APPLIED (crm.tag_activity, per new mapping): ``{tagId, entityType, entityId, appliedByUserId,
    appliedAt}``."""

    event_type = "TAG_APPLIED"

    tag_id: UUID
    entity_type: str
    entity_id: UUID
    applied_by_user_id: UUID
    applied_at: Timestamp

    @classmethod
    def of(cls, mapping: TagMapping, actor: UUID) -> TagApplied:
        """The event of ``mapping``, applied by ``actor``."""
        return cls(
            tag_id=mapping.tag_id,
            entity_type=mapping.tagged_type,
            entity_id=mapping.tagged_id,
            applied_by_user_id=actor,
            applied_at=mapping.created_at,
        )

    def key(self) -> str:
        return f"tag_applied:{self.entity_type}:{self.entity_id}:{self.tag_id}"


EVENT_TYPES: dict[str, type[Event]] = {
    event.event_type: event
    for event in (
        ClientCreated,
        ClientUpdated,
        ClientArchived,
        ContactCreated,
        ContactUpdated,
        ContactArchived,
        NoteCreated,
        InteractionLogged,
        TagDefinitionCreated,
        TagApplied,
    )
}
"""Every event type psa emits, by ``event_type``."""
