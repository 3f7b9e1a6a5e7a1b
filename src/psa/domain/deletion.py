"""What keeps a client or a contact from being deleted (reference: the clients.delete / contacts.delete
dependency validation; docs/actions.md): the records that depend on it, counted by type, and the checks that
refuse the delete with a DependencyConflict listing them."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain import clients, contacts, documents, interactions, tickets
from psa.domain.errors import DependencyConflict, ValidationError

CLIENT_DEPENDENCY_LABELS = {
    "contact": ("contact", "contacts"),
    "ticket": ("ticket", "tickets"),
    "interaction": ("interaction", "interactions"),
    "document": ("document", "documents"),
}
"""The (singular, plural) label of each type of record that blocks deleting a client, in the order listed."""
CONTACT_DEPENDENCY_LABELS = {
    "ticket": ("ticket", "tickets"),
    "interaction": ("interaction", "interactions"),
    "document": ("document", "documents"),
    "portal_user": ("portal user account", "portal user accounts"),
    "survey_invitation": ("survey invitation", "survey invitations"),
    "survey_response": ("survey response", "survey responses"),
    "asset_association": ("asset association", "asset associations"),
    "quote": ("quote", "quotes"),
}
"""The (singular, plural) label of each type of record that blocks deleting a contact, in the order listed."""


async def client_dependencies(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> dict[str, int]:
    """Counts of the records that block deleting the client, by type (only those > 0): contacts, tickets,
    interactions, and documents associated as 'company' or 'client' other than the client's notes document."""
    notes_document = await clients.notes_document_id(conn, tenant, client_id)
    client_documents = await documents.count_document_associations(conn, tenant, "client", client_id)
    counts = {
        "contact": await contacts.count_contacts_for_client(conn, tenant, client_id),
        "ticket": await tickets.count_tickets_for_client(conn, tenant, client_id),
        "interaction": await interactions.count_interactions_for_client(conn, tenant, client_id),
        "document": await documents.count_document_associations(conn, tenant, "company", client_id)
        + max(0, client_documents - (1 if notes_document is not None else 0)),
    }
    return {kind: n for kind, n in counts.items() if n}


async def check_client_deletable(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> None:
    """Raises ValidationError "Cannot delete the default client. ..." ``{client_id}`` for the tenant's default
    client, and DependencyConflict (the tickets listed with ``viewUrl``) while records depend on it."""
    if await clients.is_default_client(conn, tenant, client_id):
        raise ValidationError(
            "Cannot delete the default client. Please set another client as default in General Settings first.",
            details={"client_id": str(client_id)},
        )
    counts = await client_dependencies(conn, tenant, client_id)
    if counts:
        raise DependencyConflict.of_counts(
            "client", counts, CLIENT_DEPENDENCY_LABELS, {"ticket": f"/msp/tickets?client_id={client_id}"}
        )


async def contact_dependencies(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> dict[str, int]:
    """Counts of the records that keep the contact from being deleted, by type (only those > 0): tickets,
    interactions, documents (not its own notes document), portal users, survey invitations and responses,
    asset associations, quotes (quotes beyond the reference)."""
    counts = {
        "ticket": await tickets.count_tickets_for_contact(conn, tenant, contact_id),
        "interaction": await interactions.count_interactions_for_contact(conn, tenant, contact_id),
        **await contacts.count_contact_dependencies(conn, tenant, contact_id),
    }
    return {kind: n for kind, n in counts.items() if n}


async def check_contact_deletable(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> None:
    """Raises DependencyConflict (the tickets listed with ``viewUrl``) while records depend on the contact."""
    counts = await contact_dependencies(conn, tenant, contact_id)
    if counts:
        raise DependencyConflict.of_counts(
            "contact", counts, CONTACT_DEPENDENCY_LABELS, {"ticket": f"/msp/tickets?contact_id={contact_id}"}
        )
