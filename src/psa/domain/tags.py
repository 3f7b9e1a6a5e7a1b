"""Tags: one definition per (tenant, tagged type, tag text's ``name_key``) and mappings from a definition to
tagged records (reference: TagModel; it keyed definitions by the exact text, docs/decisions.md, "Tags").

Every function takes an explicit connection and tenant and filters every query by tenant. Writes are
``INSERT ... ON CONFLICT DO NOTHING`` followed by a read, so retried or concurrent calls converge on one
definition and one mapping.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from psa.domain.errors import NotFoundError, ValidationError
from psa.domain.values import name_key

TAGGED_TYPES = ("client", "contact", "project_task", "document", "knowledge_base_article", "opportunity", "ticket")
DEFAULT_TEXT_COLOR = "#2C3E50"
TAG_TEXT_MAX = 50

# JavaScript's \s and String.prototype.trim set (WhiteSpace + LineTerminator), which the reference uses.
_JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_TAG_TEXT = re.compile("[a-zA-Z0-9" + re.escape(_JS_WHITESPACE + "-_!@#$%^&*()+=[]{};':\",./<>?") + "]+")
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
# The tagged types whose records we hold: table and id column, checked before mapping.
_TAGGED_TABLES = {"client": ("clients", "client_id"), "contact": ("contacts", "contact_name_id")}

_MAPPING_COLUMNS = """m.tenant, m.mapping_id, m.tag_id, d.tag_text, m.tagged_id, m.tagged_type, d.background_color,
                      d.text_color, m.created_by, m.created_at"""


def validate_tag_text(tag_text: str) -> str:
    """The tag text trimmed: 1..50 UTF-16 code units of ASCII letters, digits, whitespace and
    ``-_!@#$%^&*()+=[]{};':",./<>?``. Raises ValidationError(field="tag_text") with the reference's
    messages (reference: TagModel.validateTagText)."""
    cleaned = tag_text.strip(_JS_WHITESPACE) if isinstance(tag_text, str) else ""
    if not cleaned:
        raise ValidationError("Tag text is required", field="tag_text")
    if len(cleaned.encode("utf-16-le")) // 2 > TAG_TEXT_MAX:
        raise ValidationError(f"Tag text too long (max {TAG_TEXT_MAX} characters)", field="tag_text")
    if not _TAG_TEXT.fullmatch(cleaned):
        raise ValidationError("Tag text contains invalid characters", field="tag_text")
    return cleaned


def _int32(value: int) -> int:
    """JavaScript ToInt32."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def tag_colors(tag_text: str) -> tuple[str, str]:
    """``(background, text)`` colours of a new tag as upper-case ``#RRGGBB``: a pastel background whose hue
    is a hash of the text, and DEFAULT_TEXT_COLOR. 'PSA Customer' -> ('#BEC5F4', '#2C3E50').

    Exactly the reference's generateTagColors: ``h = c + ToInt32(ToInt32(h) << 5) - h`` over
    the UTF-16 code units (only the shift is 32-bit), hue = |h| mod 360, HSL(hue, 70 %, 85 %) to RGB with
    channels rounded half up.
    """
    h = 0
    encoded = tag_text.encode("utf-16-le")
    for i in range(0, len(encoded), 2):
        h = int.from_bytes(encoded[i : i + 2], "little") + _int32(_int32(h) << 5) - h
    hue = abs(h) % 360
    lightness, saturation = 85 / 100, 70 / 100
    a = saturation * min(lightness, 1 - lightness)
    channels = []
    for n in (0, 8, 4):
        k = (n + hue / 30) % 12
        value = lightness - a * max(min(k - 3, 9 - k, 1), -1)
        channels.append(f"{math.floor(255 * value + 0.5):02X}")
    return "#" + "".join(channels), DEFAULT_TEXT_COLOR


def _check_tagged_type(tagged_type: str) -> str:
    if tagged_type not in TAGGED_TYPES:
        raise ValidationError(
            f"tagged_type must be one of {', '.join(TAGGED_TYPES)} (got '{tagged_type}')", field="tagged_type"
        )
    return tagged_type


def _check_color(color: str | None, *, field: str) -> str | None:
    if color is None:
        return None
    if not isinstance(color, str) or not _COLOR.fullmatch(color):
        raise ValidationError(f"{field} must be a hex colour like #1A2B3C (got '{color}')", field=field)
    return color.upper()


class TagDefinition(BaseModel):
    """A tag definition row: one per (tenant, tagged_type, name_key of tag_text)."""

    tenant: UUID
    tag_id: UUID
    tag_text: str
    tagged_type: str
    background_color: str | None
    text_color: str | None
    board_id: UUID | None
    created_at: datetime


class TagMapping(BaseModel):
    """A tag applied to one record, with its definition's text and colours
    (reference: CreateTagOutput plus the colours). ``created_by`` is the user who applied it, or None."""

    tenant: UUID
    mapping_id: UUID
    tag_id: UUID
    tag_text: str
    tagged_id: UUID
    tagged_type: str
    background_color: str | None
    text_color: str | None
    created_by: UUID | None
    created_at: datetime


def _definition_values(
    tag_text: str, tagged_type: str, background_color: str | None, text_color: str | None
) -> tuple[str, str, str]:
    """Validated ``(tag_text, background, text colour)``, generating missing colours."""
    cleaned = validate_tag_text(tag_text)
    _check_tagged_type(tagged_type)
    background = _check_color(background_color, field="background_color")
    foreground = _check_color(text_color, field="text_color")
    generated_background, generated_text = tag_colors(cleaned)
    return cleaned, background or generated_background, foreground or generated_text


_DEFINITION_BY_KEY = text(
    """SELECT tenant, tag_id, tag_text, tagged_type, background_color, text_color, board_id, created_at
         FROM tag_definitions WHERE tenant = :tenant AND tagged_type = :tagged_type AND name_key = :key"""
)


async def _ensure_definition(
    conn: AsyncConnection,
    tenant: UUID,
    tag_text: str,
    tagged_type: str,
    background_color: str,
    text_color: str,
    board_id: UUID | None,
) -> TagDefinition:
    params = {"tenant": tenant, "key": name_key(tag_text), "tagged_type": tagged_type}
    await conn.execute(
        text(
            """INSERT INTO tag_definitions (tenant, tag_text, name_key, tagged_type, background_color, text_color,
                                            board_id)
               VALUES (:tenant, :tag_text, :key, :tagged_type, :background, :text_color, :board_id)
               ON CONFLICT (tenant, tagged_type, name_key) DO NOTHING"""
        ),
        {
            **params,
            "tag_text": tag_text,
            "background": background_color,
            "text_color": text_color,
            "board_id": board_id,
        },
    )
    # A separate statement: its snapshot sees a definition a concurrent transaction committed meanwhile.
    result = await conn.execute(_DEFINITION_BY_KEY, params)
    return TagDefinition(**result.one()._mapping)


async def find_tag_definition(
    conn: AsyncConnection, tenant: UUID, tag_text: str, tagged_type: str
) -> TagDefinition | None:
    """The definition of (``tag_text``, ``tagged_type``): the one whose text has the same ``name_key``, or None
    (reference crm.tag_activity asks ``tag:create`` only for texts without one)."""
    result = await conn.execute(
        _DEFINITION_BY_KEY, {"tenant": tenant, "key": name_key(tag_text), "tagged_type": tagged_type}
    )
    row = result.first()
    return TagDefinition(**row._mapping) if row else None


async def ensure_tag_definition(
    conn: AsyncConnection,
    tenant: UUID,
    tag_text: str,
    tagged_type: str,
    *,
    background_color: str | None = None,
    text_color: str | None = None,
    board_id: UUID | None = None,
) -> TagDefinition:
    """Get or create the definition of (trimmed ``tag_text``, ``tagged_type``), matched by the text's
    ``name_key`` (the reference matched the exact, case-sensitive text). An existing definition is returned
    unchanged, with its first spelling; a new one gets the given colours (stored upper-case) or generated ones
    (``tag_colors``).

    Reference: TagModel.getOrCreateTagDefinition. Raises ValidationError (fields tag_text,
    tagged_type, background_color, text_color).
    """
    cleaned, background, foreground = _definition_values(tag_text, tagged_type, background_color, text_color)
    return await _ensure_definition(conn, tenant, cleaned, tagged_type, background, foreground, board_id)


async def _require(conn: AsyncConnection, table: str, column: str, tenant: UUID, record_id: UUID, field: str) -> None:
    """NotFoundError(field) unless the row exists in the tenant; locks it against deletion until commit."""
    result = await conn.execute(
        text(f"SELECT 1 FROM {table} WHERE tenant = :tenant AND {column} = :id FOR KEY SHARE"),
        {"tenant": tenant, "id": record_id},
    )
    if result.first() is None:
        raise NotFoundError(f"{field} {record_id} not found", field=field)


async def apply_tag(
    conn: AsyncConnection,
    tenant: UUID,
    *,
    tag_text: str,
    tagged_id: UUID,
    tagged_type: str,
    created_by: UUID | None = None,
    background_color: str | None = None,
    text_color: str | None = None,
) -> TagMapping:
    """Tag a record: get or create the definition, then map it to ``tagged_id``; returns the mapping.

    Idempotent: applying a tag the record already has returns the existing mapping (with its original
    ``created_by`` and ``created_at``). ``created_by`` is recorded (the reference always stored NULL,
    docs/decisions.md, "Shared domain models") and must be a user of the tenant. For tagged types ``client``
    and ``contact`` the record must exist in the tenant. Reference: TagModel.createTag.

    Raises ValidationError (tag_text, tagged_type, background_color, text_color),
    NotFoundError(field="created_by"), NotFoundError(field="tagged_id").
    """
    cleaned, background, foreground = _definition_values(tag_text, tagged_type, background_color, text_color)
    if created_by is not None:
        await _require(conn, "users", "user_id", tenant, created_by, "created_by")
    if tagged_type in _TAGGED_TABLES:
        table, column = _TAGGED_TABLES[tagged_type]
        await _require(conn, table, column, tenant, tagged_id, "tagged_id")
    definition = await _ensure_definition(conn, tenant, cleaned, tagged_type, background, foreground, None)
    params = {"tenant": tenant, "tag_id": definition.tag_id, "tagged_id": tagged_id}
    await conn.execute(
        text(
            """INSERT INTO tag_mappings (tenant, tag_id, tagged_id, tagged_type, created_by)
               VALUES (:tenant, :tag_id, :tagged_id, :tagged_type, :created_by)
               ON CONFLICT (tenant, tag_id, tagged_id) DO NOTHING"""
        ),
        {**params, "tagged_type": tagged_type, "created_by": created_by},
    )
    result = await conn.execute(
        text(
            f"""SELECT {_MAPPING_COLUMNS} FROM tag_mappings m
                  JOIN tag_definitions d ON d.tenant = m.tenant AND d.tag_id = m.tag_id
                 WHERE m.tenant = :tenant AND m.tag_id = :tag_id AND m.tagged_id = :tagged_id"""
        ),
        params,
    )
    return TagMapping(**result.one()._mapping)


async def remove_tag(conn: AsyncConnection, tenant: UUID, *, tag_id: UUID, tagged_id: UUID) -> int:
    """Remove a tag from a record; the definition stays (reference: TagModel.deleteTagMapping).
    Returns the number of mappings deleted (0 or 1)."""
    result = await conn.execute(
        text("DELETE FROM tag_mappings WHERE tenant = :tenant AND tag_id = :tag_id AND tagged_id = :tagged_id"),
        {"tenant": tenant, "tag_id": tag_id, "tagged_id": tagged_id},
    )
    return result.rowcount


async def tags_for(conn: AsyncConnection, tenant: UUID, tagged_id: UUID, tagged_type: str) -> list[TagMapping]:
    """The tags of one record, ordered by tag text (reference: TagModel.getTagsByEntity).
    Raises ValidationError(field="tagged_type")."""
    _check_tagged_type(tagged_type)
    result = await conn.execute(
        text(
            f"""SELECT {_MAPPING_COLUMNS} FROM tag_mappings m
                  JOIN tag_definitions d ON d.tenant = m.tenant AND d.tag_id = m.tag_id
                 WHERE m.tenant = :tenant AND m.tagged_id = :tagged_id AND m.tagged_type = :tagged_type
                 ORDER BY d.tag_text, m.created_at"""
        ),
        {"tenant": tenant, "tagged_id": tagged_id, "tagged_type": tagged_type},
    )
    return [TagMapping(**row._mapping) for row in result]
