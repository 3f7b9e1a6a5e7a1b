"""Contacts: the shared contact model with phone numbers, additional email addresses and custom type labels.

``models`` holds the pydantic models and the input rules, ``service`` the writes and the hydrated reads, and
``search`` the search and lookup queries, which read hydrated contacts through ``service``; ``_rows`` writes the
phone, email and type-label rows for ``service``. Callers use this package: ``contacts.create_contact(...)``.
"""

from psa.domain.contacts._rows import EMAIL_CONSTRAINTS
from psa.domain.contacts.models import (
    CUSTOM_TYPE_MAX,
    DEFAULT_PRIMARY_EMAIL_TYPE,
    EMAIL_TYPES,
    EXTENSION_MAX,
    PHONE_TYPES,
    AdditionalEmail,
    AdditionalEmailInput,
    Contact,
    ContactBrief,
    ContactInput,
    ContactUpdate,
    PhoneNumber,
    PhoneNumberInput,
    normalize_phone,
)
from psa.domain.contacts.search import (
    PHONE_MATCH_MIN_DIGITS,
    SEARCH_PHONE_MIN_DIGITS,
    SEARCH_SORT_COLUMNS,
    count_contact_dependencies,
    count_contacts_for_client,
    email_type_label,
    find_contacts_by_phone,
    phone_candidates,
    primary_contact_of_client,
    search_contacts,
)
from psa.domain.contacts.service import (
    create_contact,
    delete_contact,
    detach_from_client,
    find_contact,
    get_contact,
    get_contact_by_email,
    update_contact,
    upsert_contact,
)
from psa.domain.values import PhoneMatch  # callers name the phone-lookup modes as contacts.PhoneMatch

__all__ = [
    "CUSTOM_TYPE_MAX",
    "DEFAULT_PRIMARY_EMAIL_TYPE",
    "EMAIL_CONSTRAINTS",
    "EMAIL_TYPES",
    "EXTENSION_MAX",
    "PHONE_MATCH_MIN_DIGITS",
    "PHONE_TYPES",
    "SEARCH_PHONE_MIN_DIGITS",
    "SEARCH_SORT_COLUMNS",
    "AdditionalEmail",
    "AdditionalEmailInput",
    "Contact",
    "ContactBrief",
    "ContactInput",
    "ContactUpdate",
    "PhoneMatch",
    "PhoneNumber",
    "PhoneNumberInput",
    "count_contact_dependencies",
    "count_contacts_for_client",
    "create_contact",
    "delete_contact",
    "detach_from_client",
    "email_type_label",
    "find_contact",
    "find_contacts_by_phone",
    "get_contact",
    "get_contact_by_email",
    "normalize_phone",
    "phone_candidates",
    "primary_contact_of_client",
    "search_contacts",
    "update_contact",
    "upsert_contact",
]
