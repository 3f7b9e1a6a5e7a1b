"""The shapes the contacts actions share: email and phone input types, phone and additional email rows, the
contact permissions and ContactSummary (reference: the actions' shared schemas; docs/automation.md, "Action
contract")."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from psa.automation.actions.common import INT4_MAX
from psa.automation.registry import picker
from psa.domain import contacts
from psa.domain.contacts import Contact, ContactBrief
from psa.domain.errors import ValidationError
from psa.domain.values import normalize_email

READ, CREATE, UPDATE, DELETE = ("contact", "read"), ("contact", "create"), ("contact", "update"), ("contact", "delete")
EmailType = Literal["work", "personal", "billing", "other"]
PhoneType = Literal["work", "mobile", "home", "fax", "other"]


def contact_id_field(description: str = "Contact id") -> Any:
    """A required contact id input with the designer's contact picker."""
    return Field(description=description, json_schema_extra=picker("contact"))


def domain_message(exc: ValidationError) -> str:
    """The domain message without its leading "field: "."""
    return exc.message.split(": ", 1)[-1] if exc.field and exc.message.startswith(f"{exc.field}:") else exc.message


def _email(value: str) -> str:
    try:
        return normalize_email(value, field="email")
    except ValidationError as exc:
        raise PydanticCustomError("email", domain_message(exc)) from None


def _phone(value: str) -> str:
    try:
        contacts.normalize_phone(value, field="phone_number")
    except ValidationError as exc:
        raise PydanticCustomError("phone_number", domain_message(exc)) from None
    return value


EmailAddress = Annotated[str, AfterValidator(_email)]
"""An email address (email-validator syntax), normalised to lower case."""
PhoneNumberText = Annotated[str, Field(min_length=1), AfterValidator(_phone)]
"""A valid phone number (``phonenumbers``; without ``+`` read as a US number); stored in E.164 form."""


class PhoneRow(BaseModel):
    """Reference PhoneRow. The row id is accepted and ignored (a given list replaces the stored rows);
    ``display_order`` orders the rows (rows without one keep their place after those with one)."""

    contact_phone_number_id: UUID | None = None
    phone_number: PhoneNumberText
    extension: str | None = None
    canonical_type: PhoneType | None = None
    custom_type: str | None = None
    is_default: bool = False
    display_order: int | None = Field(default=None, ge=0, le=INT4_MAX)


class AdditionalEmailRow(BaseModel):
    """Reference AdditionalEmailRow (row id accepted and ignored; ``display_order`` as for phones)."""

    contact_additional_email_address_id: UUID | None = None
    email_address: EmailAddress
    canonical_type: EmailType | None = None
    custom_type: str | None = None
    display_order: int | None = Field(default=None, ge=0, le=INT4_MAX)


def domain_rows(rows: list[PhoneRow] | list[AdditionalEmailRow] | None) -> list[dict[str, Any]]:
    """Domain input rows, ordered by ``display_order`` (stable; rows without one last)."""
    ordered = sorted(rows or [], key=lambda r: (r.display_order is None, r.display_order or 0))
    drop = {"contact_phone_number_id", "contact_additional_email_address_id", "display_order"}
    return [row.model_dump(exclude=drop) for row in ordered]


class ContactSummary(BaseModel):
    """Reference contact summary (the shared schemas): ``phone`` is the default phone number."""

    contact_name_id: UUID
    full_name: str | None
    email: str | None
    phone: str | None
    client_id: UUID | None
    is_inactive: bool


def summary(contact: Contact | ContactBrief) -> ContactSummary:
    """The ContactSummary of a hydrated or listed contact."""
    return ContactSummary(
        contact_name_id=contact.contact_name_id,
        full_name=contact.full_name,
        email=contact.email,
        phone=contact.default_phone_number,
        client_id=contact.client_id,
        is_inactive=contact.is_inactive,
    )
