"""Notes documents of clients and contacts: a ``documents`` row, its block content (a JSON array of editor blocks)
and a ``document_associations`` row linking it to the entity, whose ``notes_document_id`` points at it
(reference: append{Contact,Client}NoteBlock; contacts.add_note and clients.add_note).

Every function takes an explicit connection and tenant and filters every query by tenant. Appending locks the
entity row (``FOR UPDATE``), so concurrent appends to one entity queue up: exactly one creates the document and
no block is lost.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from uuid import UUID, uuid4

import pydantic_core
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.db.schema import DOCUMENT_ENTITY_TYPES
from psa.domain.errors import NotFoundError, ValidationError
from psa.domain.values import UtcDatetime

NoteEntityType = Literal["client", "contact"]

# entity type -> (table, id column, name column, fallback name, not-found message)
_NOTE_ENTITIES: dict[str, tuple[str, str, str, str, str]] = {
    "client": ("clients", "client_id", "client_name", "Client", "Client not found"),
    "contact": ("contacts", "contact_name_id", "full_name", "Contact", "Contact not found"),
}


class NoteAppendResult(BaseModel):
    """Result of ``append_note_block`` (reference: the add_note actions' output, without the entity id)."""

    document_id: UUID
    created_document: bool
    updated_at: UtcDatetime


def note_block(body: str) -> dict[str, Any]:
    """The editor block of one note: ``{"type": "paragraph", "content": [{"type": "text", "text": body}]}``."""
    return {"type": "paragraph", "content": [{"type": "text", "text": body}]}


def _blocks(value: Any) -> list[Any]:
    """Stored block data as a list: a JSON array as is, a string holding a JSON array parsed, anything else
    (including invalid JSON) an empty list (reference: append{Contact,Client}NoteBlock)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return list(value) if isinstance(value, list) else []


def _check_entity_type(entity_type: str, allowed: tuple[str, ...]) -> None:
    if entity_type not in allowed:
        raise ValidationError(f"entity_type must be one of {', '.join(allowed)}", field="entity_type")


async def append_note_block(
    conn: AsyncConnection,
    tenant: UUID,
    *,
    entity_type: NoteEntityType,
    entity_id: UUID,
    body: str,
    actor_user_id: UUID | None,
) -> NoteAppendResult:
    """Append a paragraph block holding ``body`` to the notes document of a client or contact.

    When the entity has a notes document: its block content gets the block appended (a missing content row
    is created), and the document's ``updated_at`` and ``edited_by`` are set; ``created_document`` is false.
    Otherwise (also when ``notes_document_id`` points at a document that no longer exists) a document named
    "{client_name | full_name} Notes" (fallback "Client Notes" / "Contact Notes") is created with
    ``created_by`` and ``user_id`` = the actor, its block content ``[block]``, an association
    ``{entity_id, entity_type}``, and the entity's ``notes_document_id`` and ``updated_at`` are set;
    ``created_document`` is true. ``updated_at`` is the document's. No interaction is created. The document
    type is NULL (there is no document type catalogue yet).

    Raises ValidationError: "entity_type must be one of client, contact" (entity_type), "body is required"
    (body, blank); NotFoundError "Client not found" (client_id) / "Contact not found" (contact_id).
    Reference: append{Contact,Client}NoteBlock.
    """
    _check_entity_type(entity_type, tuple(_NOTE_ENTITIES))
    if not isinstance(body, str) or not body.strip():
        raise ValidationError("body is required", field="body")
    table, id_column, name_column, fallback, missing = _NOTE_ENTITIES[entity_type]
    entity = (
        await conn.execute(
            text(
                f"""SELECT {name_column} AS name, notes_document_id FROM {table}
                     WHERE tenant = :tenant AND {id_column} = :id FOR UPDATE"""
            ),
            {"tenant": tenant, "id": entity_id},
        )
    ).first()
    if entity is None:
        raise NotFoundError(missing, field=f"{entity_type}_id")
    block = note_block(body)
    params = {"tenant": tenant, "actor": actor_user_id}

    if entity.notes_document_id is not None:
        params["document_id"] = entity.notes_document_id
        touched = (
            await conn.execute(
                text(
                    """UPDATE documents SET updated_at = now(), edited_by = :actor
                        WHERE tenant = :tenant AND document_id = :document_id RETURNING updated_at"""
                ),
                params,
            )
        ).first()
        if touched is not None:
            content = (
                await conn.execute(
                    text(
                        """SELECT block_data FROM document_block_content
                            WHERE tenant = :tenant AND document_id = :document_id FOR UPDATE"""
                    ),
                    params,
                )
            ).first()
            blocks = [*_blocks(content.block_data if content else None), block]
            await conn.execute(
                text(
                    """INSERT INTO document_block_content (tenant, document_id, block_data)
                       VALUES (:tenant, :document_id, CAST(:blocks AS jsonb))
                       ON CONFLICT (tenant, document_id)
                       DO UPDATE SET block_data = EXCLUDED.block_data, updated_at = now()"""
                ),
                {**params, "blocks": pydantic_core.to_json(blocks).decode()},
            )
            return NoteAppendResult(
                document_id=entity.notes_document_id, created_document=False, updated_at=touched.updated_at
            )

    document_id = uuid4()
    params.update(
        document_id=document_id,
        name=f"{(entity.name or '').strip() or fallback} Notes",
        blocks=pydantic_core.to_json([block]).decode(),
        entity_id=entity_id,
        entity_type=entity_type,
    )
    created = (
        await conn.execute(
            text(
                """INSERT INTO documents (tenant, document_id, document_name, created_by, user_id, edited_by)
                   VALUES (:tenant, :document_id, :name, :actor, :actor, :actor) RETURNING updated_at"""
            ),
            params,
        )
    ).one()
    await conn.execute(
        text(
            """INSERT INTO document_block_content (tenant, document_id, block_data)
               VALUES (:tenant, :document_id, CAST(:blocks AS jsonb))"""
        ),
        params,
    )
    await conn.execute(
        text(
            """INSERT INTO document_associations (tenant, document_id, entity_id, entity_type)
               VALUES (:tenant, :document_id, :entity_id, :entity_type) ON CONFLICT DO NOTHING"""
        ),
        params,
    )
    await conn.execute(
        text(
            f"""UPDATE {table} SET notes_document_id = :document_id, updated_at = now()
                 WHERE tenant = :tenant AND {id_column} = :entity_id"""
        ),
        params,
    )
    return NoteAppendResult(document_id=document_id, created_document=True, updated_at=created.updated_at)


async def read_note_blocks(conn: AsyncConnection, tenant: UUID, document_id: UUID) -> list[Any]:
    """The blocks of a document, in order (``[]`` when it has no content row or the content is not a list).
    Raises NotFoundError("Document not found", field="document_id") (also for another tenant's document)."""
    row = (
        await conn.execute(
            text(
                """SELECT c.block_data FROM documents d
                     LEFT JOIN document_block_content c ON c.tenant = d.tenant AND c.document_id = d.document_id
                    WHERE d.tenant = :tenant AND d.document_id = :document_id"""
            ),
            {"tenant": tenant, "document_id": document_id},
        )
    ).first()
    if row is None:
        raise NotFoundError("Document not found", field="document_id")
    return _blocks(row.block_data)


async def count_document_associations(conn: AsyncConnection, tenant: UUID, entity_type: str, entity_id: UUID) -> int:
    """Documents associated with the entity (reference: the clients.delete ('company') and contacts.delete
    ('contact') dependency counts). Raises ValidationError(field="entity_type") for an unknown type."""
    _check_entity_type(entity_type, DOCUMENT_ENTITY_TYPES)
    result = await conn.execute(
        text(
            """SELECT count(*) FROM document_associations
                WHERE tenant = :tenant AND entity_type = :entity_type AND entity_id = :entity_id"""
        ),
        {"tenant": tenant, "entity_type": entity_type, "entity_id": entity_id},
    )
    return result.scalar_one()


async def delete_entity_documents(conn: AsyncConnection, tenant: UUID, entity_type: str, entity_id: UUID) -> int:
    """Remove an entity's documents before the entity itself is deleted: its associations go, and so does
    every document left without any association, including the entity's notes document (block content
    cascades). A document still associated with another entity stays. For clients and contacts
    ``notes_document_id`` is cleared. Returns the number of documents deleted. Idempotent.

    Raises ValidationError(field="entity_type") for an unknown type.
    Reference: the notes-document cleanup of clients.delete and contacts.delete.
    """
    _check_entity_type(entity_type, DOCUMENT_ENTITY_TYPES)
    params = {"tenant": tenant, "entity_type": entity_type, "entity_id": entity_id}
    notes_document = None
    if entity_type in _NOTE_ENTITIES:
        table, id_column, *_ = _NOTE_ENTITIES[entity_type]
        notes_document = (
            await conn.execute(
                text(
                    f"""WITH old AS (SELECT notes_document_id FROM {table}
                                      WHERE tenant = :tenant AND {id_column} = :entity_id FOR UPDATE)
                        UPDATE {table} SET notes_document_id = NULL FROM old
                         WHERE tenant = :tenant AND {id_column} = :entity_id
                     RETURNING old.notes_document_id"""
                ),
                params,
            )
        ).scalar_one_or_none()
    result = await conn.execute(
        text(
            """WITH unlinked AS (
                 DELETE FROM document_associations
                  WHERE tenant = :tenant AND entity_type = :entity_type AND entity_id = :entity_id
                 RETURNING document_id),
               candidates AS (
                 SELECT document_id FROM unlinked
                 UNION SELECT CAST(:notes_document AS uuid) WHERE CAST(:notes_document AS uuid) IS NOT NULL)
               DELETE FROM documents d
                USING candidates c
                WHERE d.tenant = :tenant AND d.document_id = c.document_id
                  AND NOT EXISTS (SELECT 1 FROM document_associations a
                                   WHERE a.tenant = d.tenant AND a.document_id = d.document_id
                                     AND NOT (a.entity_type = :entity_type AND a.entity_id = :entity_id))"""
        ),
        {**params, "notes_document": notes_document},
    )
    return result.rowcount
