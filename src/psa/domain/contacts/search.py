"""Contact search and lookups: text search over names, emails and phone numbers, lookups by phone, a client's
primary contact, the counts that guard a delete, and custom type labels (reference: contacts.search and
contacts.find; the trigram and phone-digit indexes of migration 0004 serve them). Hydrated contacts are read
through ``service``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.contacts.models import Contact, ContactBrief, normalize_phone
from psa.domain.contacts.service import find_contact
from psa.domain.errors import NotFoundError, ValidationError
from psa.domain.values import PhoneMatch, name_key, phone_digits

PHONE_MATCH_MIN_DIGITS: dict[str, int] = {"exact": 7, "last7": 7, "last10": 10}
"""The fewest digits a contact phone lookup needs under each PhoneMatch (client locations take 1 for exact)."""
SEARCH_SORT_COLUMNS = {"name": "full_name", "updated_at": "updated_at"}
# A search query made of these characters, with at least this many digits, also matches phone numbers.
_PHONE_QUERY = re.compile(r"[0-9 +().\-]+")
SEARCH_PHONE_MIN_DIGITS = 3
_BRIEF_COLUMNS = """c.contact_name_id, c.full_name, c.email, c.client_id, c.is_inactive, p.phone_number AS
                    default_phone_number, c.created_at, c.updated_at"""
_DEFAULT_PHONE_JOIN = """LEFT JOIN contact_phone_numbers p
                           ON p.tenant = c.tenant AND p.contact_name_id = c.contact_name_id AND p.is_default"""


def _like_pattern(query: str) -> str:
    """``%query%`` with ``%``, ``_`` and ``\\`` escaped (reference: contacts.search)."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_contacts(
    conn: AsyncConnection,
    tenant: UUID,
    query: str,
    *,
    client_id: UUID | None = None,
    is_inactive: bool | None = None,
    tags: Sequence[str] | None = None,
    sort_by: str = "name",
    sort_order: str = "asc",
    limit: int = 25,
    offset: int = 0,
) -> tuple[list[ContactBrief], int]:
    """``(page, total)`` of the contacts whose name, primary email or any additional email contains ``query``
    (trimmed, case-insensitive); a query of phone characters (digits, spaces, ``+-().``) with at least 3
    digits also matches phone numbers containing those digits.

    Filters: ``client_id``; ``is_inactive`` (None: both, the reference's default); ``tags`` (any of these tag texts,
    by ``name_key``). Order: ``sort_by`` ``name`` (full_name) or ``updated_at``, ``sort_order`` ``asc``/``desc``, then
    contact_name_id ascending, so pages are stable. ``total`` counts distinct contacts. Served by the trigram
    indexes of migration 0004. Reference: contacts.search, which matched a phone column that no longer
    exists. Raises ValidationError for an unknown ``sort_by`` / ``sort_order``.
    """
    if sort_by not in SEARCH_SORT_COLUMNS:
        raise ValidationError(f"sort_by must be one of {', '.join(SEARCH_SORT_COLUMNS)}", field="sort_by")
    if sort_order not in ("asc", "desc"):
        raise ValidationError("sort_order must be one of asc, desc", field="sort_order")
    cleaned = query.strip()
    digits = phone_digits(cleaned)
    # Filters, applied in every branch: client, active state, any of the tag texts.
    where = """(CAST(:client AS uuid) IS NULL OR c.client_id = :client)
               AND (CAST(:inactive AS boolean) IS NULL OR c.is_inactive = :inactive)
               AND (CAST(:tags AS text[]) IS NULL OR EXISTS (
                    SELECT 1 FROM tag_mappings m JOIN tag_definitions d ON d.tenant = m.tenant AND d.tag_id = m.tag_id
                     WHERE m.tenant = c.tenant AND m.tagged_id = c.contact_name_id AND m.tagged_type = 'contact'
                       AND d.tagged_type = 'contact' AND d.name_key = ANY(CAST(:tags AS text[]))))"""
    columns = "c.contact_name_id, c.full_name, c.email, c.client_id, c.is_inactive, c.created_at, c.updated_at"
    # Contacts whose name or primary email matches (one bitmap heap scan over both trigram indexes; emails are
    # stored in lower case and match a lower-cased pattern), then, without a dedup pass, those matched only by an
    # additional email or a phone number.
    matched = "(c.full_name ILIKE :p OR c.email LIKE :lp)"  # bare, or the planner cannot use the two indexes
    others = """SELECT a.contact_name_id FROM contact_additional_email_addresses a
                 WHERE a.tenant = :t AND a.normalized_email_address LIKE :lp"""
    if _PHONE_QUERY.fullmatch(cleaned) and len(digits) >= SEARCH_PHONE_MIN_DIGITS:
        others += """
                UNION ALL SELECT n.contact_name_id FROM contact_phone_numbers n
                 WHERE n.tenant = :t AND n.normalized_phone_number LIKE :digits"""
    hits = f"""SELECT {columns} FROM contacts c WHERE c.tenant = :t AND {matched} AND {where}
               UNION ALL
               SELECT {columns} FROM (SELECT DISTINCT contact_name_id FROM ({others}) u) o
                 JOIN contacts c ON c.tenant = :t AND c.contact_name_id = o.contact_name_id
                WHERE NOT COALESCE({matched}, false) AND {where}"""
    params = {
        "t": tenant,
        "p": _like_pattern(cleaned),
        "lp": _like_pattern(cleaned.lower()),
        "digits": f"%{digits}%",
        "client": client_id,
        "inactive": is_inactive,
        "tags": [name_key(tag) for tag in tags] if tags else None,
        "limit": limit,
        "offset": offset,
    }
    order = f"{SEARCH_SORT_COLUMNS[sort_by]} {'DESC' if sort_order == 'desc' else 'ASC'}, contact_name_id"
    # The page first (counted over every hit), then the default phone of its rows only.
    result = await conn.execute(
        text(
            f"""WITH hits AS ({hits}),
                     page AS (SELECT h.*, count(*) OVER () AS total FROM hits h ORDER BY {order}
                              LIMIT :limit OFFSET :offset)
                SELECT page.*, p.phone_number AS default_phone_number
                  FROM page LEFT JOIN contact_phone_numbers p
                    ON p.tenant = :t AND p.contact_name_id = page.contact_name_id AND p.is_default
                 ORDER BY {order}"""
        ),
        params,
    )
    page = result.all()
    if page:
        total = page[0].total
    elif offset == 0:
        total = 0
    else:  # past the last page: count on its own
        total = await conn.scalar(text(f"WITH hits AS ({hits}) SELECT count(*) FROM hits"), params)
    return [ContactBrief(**{k: v for k, v in row._mapping.items() if k != "total"}) for row in page], total


def phone_candidates(phone: str, *, default_region: str = "US") -> list[str]:
    """The digit strings an exact phone lookup compares with stored numbers (which are E.164, so their digits
    include the country code): the digits as given, and the E.164 digits when ``phone`` parses as a valid
    number (numbers without ``+`` are read in ``default_region``)."""
    digits = phone_digits(phone)
    candidates = [digits]
    try:
        e164 = normalize_phone(phone, region=default_region, field="phone")
    except ValidationError:
        return candidates
    if e164[1:] != digits:
        candidates.append(e164[1:])
    return candidates


async def find_contacts_by_phone(
    conn: AsyncConnection,
    tenant: UUID,
    phone: str,
    match: PhoneMatch = "exact",
    *,
    client_id: UUID | None = None,
    most_recent: bool = False,
    limit: int = 5,
) -> list[ContactBrief]:
    """Contacts with a phone number matching ``phone``, active ones first, then by creation (oldest first, or
    newest with ``most_recent``), at most ``limit``; only the client's when ``client_id`` is given.

    Numbers compare as digits: ``exact`` whole numbers (``phone_candidates``), ``last7`` / ``last10`` the
    last 7 / 10 digits (indexed expressions of migration 0004). ``phone`` needs at least 10 digits for
    ``last10`` and 7 otherwise, else ValidationError("phone is invalid", field="phone").
    Reference: contacts.find by phone, here on ``contact_phone_numbers``.
    """
    digits = phone_digits(phone)
    if len(digits) < PHONE_MATCH_MIN_DIGITS[match]:
        raise ValidationError("phone is invalid", field="phone")
    if match == "exact":
        condition, value = "p.normalized_phone_number = ANY(CAST(:v AS text[]))", phone_candidates(phone)
    else:
        n = PHONE_MATCH_MIN_DIGITS[match]  # 7 or 10, a literal so the expression index applies
        condition, value = f"right(p.normalized_phone_number, {n}) = :v", digits[-n:]
    direction = "DESC" if most_recent else "ASC"
    result = await conn.execute(
        text(
            f"""SELECT {_BRIEF_COLUMNS}
                  FROM contacts c {_DEFAULT_PHONE_JOIN}
                 WHERE c.tenant = :t AND (CAST(:client AS uuid) IS NULL OR c.client_id = :client)
                   AND EXISTS (SELECT 1 FROM contact_phone_numbers p
                                WHERE p.tenant = c.tenant AND p.contact_name_id = c.contact_name_id AND {condition})
                 ORDER BY c.is_inactive, c.created_at {direction}, c.contact_name_id {direction}
                 LIMIT :limit"""
        ),
        {"t": tenant, "v": value, "client": client_id, "limit": limit},
    )
    return [ContactBrief(**row._mapping) for row in result]


async def primary_contact_of_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> Contact | None:
    """The client's primary contact: its first active contact by creation, else its first inactive one;
    None when it has none (reference: clients.find ``include_primary_contact``, ordered
    ``is_inactive ASC, created_at ASC``)."""
    contact_id = await conn.scalar(
        text(
            """SELECT contact_name_id FROM contacts WHERE tenant = :t AND client_id = :c
                ORDER BY is_inactive, created_at, contact_name_id LIMIT 1"""
        ),
        {"t": tenant, "c": client_id},
    )
    return await find_contact(conn, tenant, contact_id) if contact_id is not None else None


async def count_contacts_for_client(conn: AsyncConnection, tenant: UUID, client_id: UUID) -> int:
    """Contacts of the client, active or not (reference: the clients.delete dependency count)."""
    result = await conn.execute(
        text("SELECT count(*) FROM contacts WHERE tenant = :t AND client_id = :c"), {"t": tenant, "c": client_id}
    )
    return result.scalar_one()


async def count_contact_dependencies(conn: AsyncConnection, tenant: UUID, contact_id: UUID) -> dict[str, int]:
    """Counts of the records (other than tickets and interactions) that keep a contact from being deleted:
    ``document`` (associations as 'contact', the contact's own notes document excepted), ``portal_user``
    (client users), ``survey_invitation``, ``survey_response``, ``asset_association``, and ``quote`` (quotes
    naming the contact, whose foreign key would otherwise refuse the delete). Reference: the contacts.delete
    dependency validation, which also counted the contact's own notes document."""
    row = (
        await conn.execute(
            text(
                """SELECT
                     (SELECT count(*) FROM document_associations a
                       WHERE a.tenant = :t AND a.entity_type = 'contact' AND a.entity_id = :id
                         AND a.document_id IS DISTINCT FROM (SELECT notes_document_id FROM contacts
                                                              WHERE tenant = :t AND contact_name_id = :id))
                       AS document,
                     (SELECT count(*) FROM users WHERE tenant = :t AND contact_id = :id AND user_type = 'client')
                       AS portal_user,
                     (SELECT count(*) FROM survey_invitations WHERE tenant = :t AND contact_id = :id)
                       AS survey_invitation,
                     (SELECT count(*) FROM survey_responses WHERE tenant = :t AND contact_id = :id)
                       AS survey_response,
                     (SELECT count(*) FROM asset_associations
                       WHERE tenant = :t AND entity_type = 'contact' AND entity_id = :id) AS asset_association,
                     (SELECT count(*) FROM quotes WHERE tenant = :t AND contact_id = :id) AS quote"""
            ),
            {"t": tenant, "id": contact_id},
        )
    ).one()
    return dict(row._mapping)


async def email_type_label(conn: AsyncConnection, tenant: UUID, type_id: UUID) -> str:
    """The label of the tenant's custom email type ``type_id``.
    Raises NotFoundError("Email type not found", field="primary_email_custom_type_id")."""
    label = await conn.scalar(
        text("SELECT label FROM contact_email_type_definitions WHERE tenant = :t AND contact_email_type_id = :id"),
        {"t": tenant, "id": type_id},
    )
    if label is None:
        raise NotFoundError("Email type not found", field="primary_email_custom_type_id")
    return label
