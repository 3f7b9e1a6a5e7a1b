"""Clients (formerly companies): creation with default tax settings and email suffix, lookups, updates,
archiving, duplication and deletion, and the default location (reference: ClientModel and the clients.* actions).

``models`` holds the pydantic models and the field rules, ``service`` the writes and the reads by id, name and
property, and ``search`` the search and lookup queries, which read clients through ``service``. Callers use this
package: ``clients.create_client(...)``. The check that a client given by id exists (and its row) is
``psa.domain.lookups.require_client``.
"""

from psa.domain.clients.models import (
    CLIENT_NAME_MAX,
    HOSTNAME_MAX,
    LOCATION_FIELDS,
    URL_MAX,
    BillingEmail,
    Client,
    ClientInput,
    ClientName,
    ClientType,
    ClientUpdate,
    CurrencyCode,
    LocationPhoneMatch,
    Notes,
    WebUrl,
    extract_domain,
)
from psa.domain.clients.search import (
    SEARCH_SORT_COLUMNS,
    find_client_by_location_phone,
    is_default_client,
    notes_document_id,
    search_clients,
)
from psa.domain.clients.service import (
    CREATE_CLIENT,
    archive_client,
    copy_client_locations,
    create_client,
    deactivate_client_users,
    delete_client,
    duplicate_client,
    find_client,
    find_client_by_name,
    find_client_by_property,
    update_client,
    upsert_default_location,
)
from psa.domain.values import PHONE_MATCH_MIN_DIGITS  # callers read the location-phone rule here

__all__ = [
    "CLIENT_NAME_MAX",
    "CREATE_CLIENT",
    "HOSTNAME_MAX",
    "LOCATION_FIELDS",
    "PHONE_MATCH_MIN_DIGITS",
    "SEARCH_SORT_COLUMNS",
    "URL_MAX",
    "BillingEmail",
    "Client",
    "ClientInput",
    "ClientName",
    "ClientType",
    "ClientUpdate",
    "CurrencyCode",
    "LocationPhoneMatch",
    "Notes",
    "WebUrl",
    "archive_client",
    "copy_client_locations",
    "create_client",
    "deactivate_client_users",
    "delete_client",
    "duplicate_client",
    "extract_domain",
    "find_client",
    "find_client_by_location_phone",
    "find_client_by_name",
    "find_client_by_property",
    "is_default_client",
    "notes_document_id",
    "search_clients",
    "update_client",
    "upsert_default_location",
]
