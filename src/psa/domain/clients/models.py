"""Client models and the rules that normalise their input: ``ClientInput`` / ``ClientUpdate`` / ``Client``, the
annotated field types the clients.* actions reuse, website URLs and their registered domain, and the
``properties["website"]`` sync.

URLs: ``url`` must be an http(s) URL with a host name or IP address. A value without ``://`` is taken as a
bare host and stored with ``https://`` prefixed ("example.com" -> "https://example.com"), the former
reference email-suffix rule. ``url`` and ``properties["website"]`` always hold the same value
(reference: ClientModel website sync).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import pydantic_core
import tldextract
from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from psa.domain.errors import ValidationError, validation_error_from_pydantic
from psa.domain.values import name_key, normalize_email

CLIENT_NAME_MAX = 255
URL_MAX = 2048
HOSTNAME_MAX = 253
# The bundled Public Suffix List snapshot only: no download, no cache directory
# (docs/decisions.md, "Shared domain models").
_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
# One DNS label: letters and digits of any script, inner hyphens, at most 63 characters.
_LABEL = re.compile(r"(?!-)(?:[^\W_]|-){1,63}(?<!-)")
_CURRENCY = re.compile(r"[A-Z]{3}")
# The SELECT list that reads a ``Client`` row (``properties`` is never null).
CLIENT_COLUMNS = """tenant, client_id, client_name, client_type, url, COALESCE(properties, '{}'::jsonb) AS properties,
              notes, billing_email, is_inactive, default_currency_code, created_at, updated_at"""


def _web_url(value: str) -> tuple[str, str]:
    """``(url, host)`` of an http(s) URL; a value without ``://`` gets ``https://`` prefixed. The host is
    lower case without a trailing dot. Raises ValueError with a message for anything else."""
    candidate = value.strip()
    if any(ch.isspace() or not ch.isprintable() for ch in candidate):
        raise ValueError("must not contain spaces or control characters")
    if len(candidate) > URL_MAX:
        raise ValueError(f"must be at most {URL_MAX} characters")
    if "://" not in candidate:
        candidate = "https://" + candidate
    parts = urlsplit(candidate)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password")
    parts.port  # noqa: B018 - raises ValueError for a malformed port
    host = (parts.hostname or "").rstrip(".")
    if not (_is_ip(host) or (len(host) <= HOSTNAME_MAX and all(_LABEL.fullmatch(x) for x in host.split(".")))):
        raise ValueError("must have a valid host name")
    return candidate, host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def extract_domain(url: str | None) -> str | None:
    """The registered domain of a website URL or bare host, lower case: "https://www.shop.example.co.uk/x"
    -> "example.co.uk", "Example.COM" -> "example.com".

    None for blank or invalid input, IP addresses, ``localhost`` and hosts without a public suffix. Uses
    tldextract with its bundled Public Suffix List (ICANN section; never the network). Never raises.
    Reference: the former ClientModel email-suffix extraction, which only stripped ``www.``.
    """
    try:
        _, host = _web_url(url or "")
    except ValueError:
        return None
    if _is_ip(host):
        return None
    return _EXTRACTOR.extract_str(host).top_domain_under_public_suffix or None


def _check_client_name(value: str) -> str:
    cleaned = value.strip()
    if not name_key(cleaned):
        raise PydanticCustomError("client_name", "Client name is required")
    if len(cleaned) > CLIENT_NAME_MAX:
        raise PydanticCustomError("client_name", f"Client name must be at most {CLIENT_NAME_MAX} characters")
    return cleaned


def _check_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return _web_url(value)[0]
    except ValueError as exc:
        raise PydanticCustomError("url", "Invalid URL: {reason}", {"reason": str(exc)}) from exc


def _check_billing_email(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return normalize_email(value, field="billing_email")
    except ValidationError as exc:
        raise PydanticCustomError("email", exc.message) from exc


def _check_notes(value: str | None) -> str | None:
    return value if value and value.strip() else None


def _check_currency(value: str) -> str:
    code = value.strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise PydanticCustomError("currency", "Currency code must be three letters (ISO 4217)")
    return code


ClientName = Annotated[str, AfterValidator(_check_client_name)]
WebUrl = Annotated[str | None, AfterValidator(_check_url)]
BillingEmail = Annotated[str | None, AfterValidator(_check_billing_email)]
Notes = Annotated[str | None, AfterValidator(_check_notes)]
CurrencyCode = Annotated[str, AfterValidator(_check_currency)]
ClientType = Literal["company", "individual"]


class ClientInput(BaseModel):
    """Input of ``create_client``. Unknown keys are rejected.

    ``client_name`` is trimmed, 1..255 characters (reference: 'Client name is required'); ``url``: see the
    module docstring, '' means none; ``billing_email`` is syntax-checked and lower-cased, '' means none;
    blank ``notes`` become None; ``default_currency_code`` is three letters, upper-cased.
    Reference: CreateClientInput / clientFormSchema; phone and address fields live in
    client locations.
    """

    model_config = ConfigDict(extra="forbid")

    client_name: ClientName
    client_type: ClientType = "company"
    url: WebUrl = None
    billing_email: BillingEmail = None
    notes: Notes = None
    properties: dict[str, Any] | None = None
    is_inactive: bool = False
    default_currency_code: CurrencyCode = "USD"


class ClientUpdate(BaseModel):
    """Input of ``update_client``: the same rules as ClientInput, every field optional. Only the fields
    given (``model_fields_set``) change; an explicit None clears ``url``, ``billing_email`` and ``notes``,
    empties ``properties`` (except the synced website) and is rejected for the other fields."""

    model_config = ConfigDict(extra="forbid")

    client_name: ClientName | None = None
    client_type: ClientType | None = None
    url: WebUrl = None
    billing_email: BillingEmail = None
    notes: Notes = None
    properties: dict[str, Any] | None = None
    is_inactive: bool | None = None
    default_currency_code: CurrencyCode | None = None


class Client(BaseModel):
    """A client row. ``properties`` is ``{}`` when the column is null."""

    tenant: UUID
    client_id: UUID
    client_name: str
    client_type: str
    url: str | None
    properties: dict[str, Any]
    notes: str | None
    billing_email: str | None
    is_inactive: bool
    default_currency_code: str
    created_at: datetime
    updated_at: datetime


class LocationPhoneMatch(BaseModel):
    """The best client location matching a phone number and how many distinct clients matched."""

    client: Client
    location_id: UUID
    location_name: str | None
    phone: str | None
    matched_count: int


# The fields of a client's default location that ``upsert_default_location`` writes.
LOCATION_FIELDS = (
    "address_line1",
    "address_line2",
    "city",
    "state_province",
    "postal_code",
    "country_name",
    "phone",
    "email",
)
_Model = TypeVar("_Model", ClientInput, ClientUpdate)


def parse_input(model: type[_Model], data: _Model | Mapping[str, Any]) -> _Model:
    """``data`` as a ``model`` (validated unless it already is one). Raises ValidationError naming the field."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(dict(data))
    except PydanticValidationError as exc:
        raise validation_error_from_pydantic(exc) from exc


def sync_website(url: str | None, properties: dict[str, Any] | None, *, url_given: bool) -> tuple[str | None, dict]:
    """``(url, properties)`` with ``properties["website"] == url`` (key absent when url is None).

    A given ``url`` wins (None clears the website); otherwise a non-blank ``properties["website"]`` is
    validated as a URL (field ``properties.website``) and becomes the url.
    """
    props = dict(properties or {})
    website = props.pop("website", None)
    if not url_given and website not in (None, ""):
        if not isinstance(website, str):
            raise ValidationError("properties.website: must be a string", field="properties.website")
        try:
            url = _web_url(website)[0]
        except ValueError as exc:
            raise ValidationError(f"properties.website: Invalid URL: {exc}", field="properties.website") from exc
    if url is not None:
        props["website"] = url
    return url, props


def properties_json(properties: dict[str, Any]) -> str:
    """``properties`` as JSON text. Raises ValidationError(field="properties") when it cannot be serialised."""
    try:
        return pydantic_core.to_json(properties).decode()
    except pydantic_core.PydanticSerializationError as exc:
        raise ValidationError(f"properties: not JSON-serialisable: {exc}", field="properties") from exc
