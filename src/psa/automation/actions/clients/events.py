"""The domain events of the clients actions: CLIENT_CREATED, CLIENT_UPDATED (with field diffs) and
CLIENT_ARCHIVED (reference: domainEventBuilders; docs/automation.md, "Events")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from psa.automation.actions.common import camel, compact, jsonable, same
from psa.domain.clients import Client
from psa.timeutil import iso_z


def client_created_payload(client: Client, actor: UUID) -> dict[str, Any]:
    """CLIENT_CREATED: ``{clientId, clientName, createdByUserId, createdAt, status}``."""
    return compact(
        {
            "clientId": str(client.client_id),
            "clientName": client.client_name,
            "createdByUserId": str(actor),
            "createdAt": iso_z(client.created_at),
            "status": "inactive" if client.is_inactive else "active",
        }
    )


def client_updated_payload(
    client_id: UUID, before: dict[str, Any], after: dict[str, Any], keys: Iterable[str], updated_at: datetime | None
) -> dict[str, Any]:
    """CLIENT_UPDATED: ``{clientId, updatedAt?, updatedFields?, changes?}``. ``properties`` (when among
    ``keys``) is diffed key by key into ``properties.{camelKey}`` paths, then the other keys (except
    tenant / created_at / updated_at) into camelCase paths; ``changes[path] = {previous, new}``."""
    keys = list(keys)
    fields: list[str] = []
    changes: dict[str, Any] = {}

    def diff(path: str, old: Any, new: Any) -> None:
        if not same(old, new):
            if path not in fields:
                fields.append(path)
            changes[path] = {"previous": jsonable(old), "new": jsonable(new)}

    if "properties" in keys:
        old_props, new_props = before.get("properties") or {}, after.get("properties") or {}
        for key in [*old_props, *(k for k in new_props if k not in old_props)]:
            diff(f"properties.{camel(key)}", old_props.get(key), new_props.get(key))
    for key in keys:
        if key not in ("tenant", "updated_at", "created_at", "properties"):
            diff(camel(key), before.get(key), after.get(key))
    return compact(
        {
            "clientId": str(client_id),
            "updatedAt": iso_z(updated_at) if updated_at else None,
            "updatedFields": fields,
            "changes": changes,
        }
    )


def client_archived_payload(
    client_id: UUID, actor: UUID, archived_at: datetime, reason: str | None = None
) -> dict[str, Any]:
    """CLIENT_ARCHIVED: ``{clientId, archivedByUserId, archivedAt, reason?}``."""
    return compact(
        {"clientId": str(client_id), "archivedByUserId": str(actor), "archivedAt": iso_z(archived_at), "reason": reason}
    )
