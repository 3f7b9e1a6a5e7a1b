"""The shapes the clients actions share: the client permissions, the client id input and ClientSummary
(reference: the actions' shared schemas; docs/automation.md, "Action contract")."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from psa.automation.actions.common import IsoDateTime
from psa.automation.registry import picker
from psa.domain.clients import Client

READ, CREATE, UPDATE, DELETE = ("client", "read"), ("client", "create"), ("client", "update"), ("client", "delete")


def client_id_field(description: str = "Client id") -> Any:
    """A required client id input with the designer's client picker."""
    return Field(description=description, json_schema_extra=picker("client"))


class ClientSummary(BaseModel):
    """Reference ClientSummary (the shared schemas)."""

    client_id: UUID
    client_name: str
    client_type: str | None = None
    url: str | None = None
    billing_email: str | None = None
    is_inactive: bool
    properties: dict[str, Any] | None = None
    updated_at: IsoDateTime | None = None


def summary(client: Client) -> ClientSummary:
    """The ClientSummary of a domain client."""
    return ClientSummary(
        client_id=client.client_id,
        client_name=client.client_name,
        client_type=client.client_type,
        url=client.url,
        billing_email=client.billing_email,
        is_inactive=client.is_inactive,
        properties=client.properties,
        updated_at=client.updated_at,
    )
