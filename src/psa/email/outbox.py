"""The email outbox: every email psa sends is one row of ``email_outbox`` (docs/architecture.md, "Email outbox").

**Queue.** :func:`queue_email` writes the rendered message in the caller's transaction, the transaction of the
change that causes the email (an action's, through ``ActionContext.queue_email``; provisioning's
``send_welcome_email``), so an email exists exactly when its change committed. The row's id derives from its
business key (``source_key``) and the ``Message-ID`` from the id, on the sender's domain: a retry addresses the
same row, and a re-send carries the same ``Message-ID``, by which receivers de-duplicate.

**Send.** :class:`EmailSender` delivers after commit. It claims a row (``pending``; ``failed`` and due; or
``sending`` whose lease ran out -> ``sending``, ``attempts`` + 1, leased for ``email_lease_seconds``), hands the
message to the provider and marks the row ``sent``, or ``failed`` with the error and the time of the next attempt
(``email_retry_seconds``, doubling up to an hour; none after ``email_max_attempts`` or a permanent refusal). A
``sent`` row is never sent again; a row whose sender died mid-delivery is re-sent with the same ``Message-ID``.
Delivery is at least once.

**Sealed rows.** A message that holds a credential (the welcome email's temporary password) is stored sealed:
AES-256-GCM under the codec key (``Settings.resolved_codec_key()``), bound to its row. It is opened only to hand
it to the provider, and an error recorded for it is scrubbed of every word of its text. Choosing this over
rendering at send time from the workflow payload lets any sender, the worker's loop included, retry a failed
welcome email (docs/decisions.md, "Email outbox").
"""

from __future__ import annotations

import dataclasses
import json
import logging
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from uuid import UUID, uuid5

from cryptography.exceptions import InvalidTag
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from psa import metrics
from psa.config import ConfigurationError, Settings
from psa.crypto import Sealer
from psa.db.engine import tenant_transaction
from psa.email.models import EmailResult, QueuedEmail
from psa.email.providers import EmailProvider, is_permanent

log = logging.getLogger("psa.email")

OUTBOX_NAMESPACE = UUID("0b5f4a8e-3c2d-4e71-9f6a-8d1e2c7b5a90")
MAX_RETRY_DELAY_SECONDS = 3600.0
REDACTED = "[REDACTED]"
SCRUBBED_WORD_MIN = 6
"""Words of a sealed message's text at least this long are scrubbed from its recorded errors."""


class InvalidEmail(ValueError):
    """A message that cannot be queued: it has no recipient, or ``address`` is not a valid address."""

    def __init__(self, message: str, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address


def email_id_for(tenant: UUID, source_key: str) -> UUID:
    """The outbox row id of the email with business key ``source_key`` in ``tenant`` (uuid5)."""
    return uuid5(OUTBOX_NAMESPACE, f"{tenant}/{source_key}")


def message_id_for(email_id: UUID, sender: str) -> str:
    """The ``Message-ID`` of outbox row ``email_id``: ``<email_id@domain>``, the domain of the ``sender`` address
    (``psa.localhost`` when it has none)."""
    domain = parseaddr(sender)[1].rpartition("@")[2].strip() or "psa.localhost"
    return f"<{email_id}@{domain}>"


def recipients_of(message: EmailMessage) -> list[str]:
    """The normalised addresses of ``To``, ``Cc`` and ``Bcc`` (email-validator, syntax only), in order.
    Raises InvalidEmail when there is none or one is not valid."""
    addresses = [
        address.addr_spec
        for name in ("To", "Cc", "Bcc")
        for header in message.get_all(name, [])
        for address in header.addresses
    ]
    if not addresses:
        raise InvalidEmail("the email has no recipient")
    normalized: list[str] = []
    for address in addresses:
        try:
            normalized.append(validate_email(address, check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            raise InvalidEmail(f"invalid recipient address {address!r}: {exc}", address=address) from None
    return normalized


def _row_binding(tenant: UUID, email_id: UUID) -> bytes:
    """The associated data a sealed message is bound to: it opens only as the message of its own row."""
    return f"email_outbox/{tenant}/{email_id}".encode()


_COLUMNS = "tenant, email_id, source_key, kind, message_id, recipients, subject, message, sealed"
_VALUES = ":t, :id, :key, :kind, :mid, CAST(:recipients AS jsonb), :subject, :message, :sealed"
QUEUE = text(
    f"""INSERT INTO email_outbox ({_COLUMNS}) VALUES ({_VALUES})
        ON CONFLICT (tenant, email_id) DO NOTHING
        RETURNING message_id"""
)
STORED_MESSAGE_ID = text("SELECT message_id FROM email_outbox WHERE tenant = :t AND email_id = :id")


def _row(tenant: UUID, source_key: str, kind: str, message: EmailMessage, seal_key: bytes | None) -> dict[str, object]:
    """The parameters of ``message``'s outbox row (``_COLUMNS``); sets its ``Message-ID``. Raises InvalidEmail."""
    email_id = email_id_for(tenant, source_key)
    recipients = recipients_of(message)
    del message["Message-ID"]
    message["Message-ID"] = message_id_for(email_id, str(message["From"] or ""))
    raw = message.as_bytes()
    return {
        "t": tenant,
        "id": email_id,
        "key": source_key,
        "kind": kind,
        "mid": message["Message-ID"],
        "recipients": json.dumps(recipients),
        "subject": str(message["Subject"] or ""),
        "message": Sealer(seal_key).seal(raw, _row_binding(tenant, email_id)) if seal_key else raw,
        "sealed": seal_key is not None,
    }


async def queue_email(
    conn: AsyncConnection,
    *,
    tenant: UUID,
    source_key: str,
    kind: str,
    message: EmailMessage,
    seal_key: bytes | None = None,
) -> QueuedEmail:
    """Write ``message`` to the outbox as ``pending`` in ``conn``'s transaction, under the row key ``source_key``
    (``<action>@<version>/<idempotency key>/<n>`` for actions), and return its row and ``Message-ID``; the
    worker's email sender delivers it after commit. Sets the message's ``Message-ID`` (:func:`message_id_for`).
    With ``seal_key`` (the codec key) the stored message is sealed. A key already queued is not queued again: the
    stored row's ``Message-ID`` is returned. ``EmailSender.queue_and_claim`` queues a message its caller sends
    itself.

    Raises InvalidEmail when the message has no recipient or an invalid one (nothing written).
    """
    row = _row(tenant, source_key, kind, message, seal_key)
    inserted = (await conn.execute(QUEUE, row)).scalar()
    message_id = inserted or (await conn.execute(STORED_MESSAGE_ID, row)).scalar_one()
    return QueuedEmail(tenant=tenant, email_id=row["id"], message_id=message_id)


@dataclasses.dataclass(frozen=True)
class Claim:
    """A row claimed for one delivery attempt (``attempts`` counts this one)."""

    tenant: UUID
    email_id: UUID
    kind: str
    message_id: str
    message: bytes = dataclasses.field(repr=False)
    sealed: bool
    attempts: int

    def __str__(self) -> str:
        """The claim as log fields (never the message)."""
        return f"tenant_id={self.tenant} email_id={self.email_id} message_id={self.message_id} attempt={self.attempts}"


def _due(alias: str) -> str:
    """Rows a sender may claim: pending, failed and due for a retry, or sending with an expired lease."""
    return f"""({alias}.status = 'pending'
               OR ({alias}.status = 'failed' AND {alias}.next_attempt_at <= now())
               OR ({alias}.status = 'sending' AND {alias}.locked_until < now()))"""


_CLAIM_SET = """SET status = 'sending', attempts = o.attempts + 1, updated_at = now(),
                    locked_until = now() + CAST(:lease AS double precision) * interval '1 second'"""
_CLAIMED = "RETURNING o.tenant, o.email_id, o.kind, o.message_id, o.message, o.sealed, o.attempts"
QUEUE_AND_CLAIM = text(
    f"""INSERT INTO email_outbox AS o ({_COLUMNS}, status, attempts, locked_until)
        VALUES ({_VALUES}, 'sending', 1, now() + CAST(:lease AS double precision) * interval '1 second')
        ON CONFLICT (tenant, email_id) DO UPDATE {_CLAIM_SET}
         WHERE {_due("o")} OR (:take_over AND o.status = 'sending')
        {_CLAIMED}"""
)
CLAIM_NEXT = text(
    f"""UPDATE email_outbox o {_CLAIM_SET}
         WHERE (o.tenant, o.email_id) = (
               SELECT q.tenant, q.email_id FROM email_outbox q
                WHERE q.status <> 'sent' AND {_due("q")} AND (CAST(:t AS uuid) IS NULL OR q.tenant = :t)
                ORDER BY q.created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
        {_CLAIMED}"""
)
MARK_SENT = text(
    """UPDATE email_outbox
          SET status = 'sent', sent_at = now(), updated_at = now(), provider = :provider, location = :location,
              last_error = NULL, locked_until = NULL, next_attempt_at = NULL
        WHERE tenant = :t AND email_id = :id AND status = 'sending' AND attempts = :n"""
)
MARK_FAILED = text(
    """UPDATE email_outbox
          SET status = 'failed', updated_at = now(), provider = :provider, last_error = :error, locked_until = NULL,
              next_attempt_at = now() + CAST(:delay AS double precision) * interval '1 second'
        WHERE tenant = :t AND email_id = :id AND status = 'sending' AND attempts = :n"""
)
STORED_OUTCOME = text(
    """SELECT status, message_id, provider, location, last_error, attempts FROM email_outbox
        WHERE tenant = :t AND email_id = :id"""
)


def _scrub(error: str, message: EmailMessage) -> str:
    """``error`` without any word (``SCRUBBED_WORD_MIN`` characters or more) of ``message``'s text parts."""
    words = {
        word
        for part in message.walk()
        if part.get_content_maintype() == "text"
        for word in part.get_content().split()
        if len(word) >= SCRUBBED_WORD_MIN
    }
    for word in sorted(words, key=len, reverse=True):
        error = error.replace(word, REDACTED)
    return error


class EmailSender:
    """Delivers email outbox rows through one ``provider`` after commit (see the module doc); the retry policy
    and lease come from ``settings`` (``email_lease_seconds``, ``email_retry_seconds``, ``email_max_attempts``) and
    sealed rows open with ``settings.resolved_codec_key()``."""

    def __init__(self, engine: AsyncEngine, provider: EmailProvider, settings: Settings) -> None:
        self.engine = engine
        self.provider = provider
        self.settings = settings

    async def queue_and_claim(
        self,
        conn: AsyncConnection,
        *,
        tenant: UUID,
        source_key: str,
        kind: str,
        message: EmailMessage,
        seal_key: bytes | None = None,
        take_over: bool = False,
    ) -> Claim | EmailResult:
        """Queue ``message`` as :func:`queue_email` does, already claimed by the caller, in one statement of
        ``conn``'s transaction: commit, then :meth:`send` the claim (the welcome email activity does). When the key
        is queued already, its row is claimed if due (see ``_due``) or, with ``take_over``, while another sender's
        lease still runs (the caller knows that sender is gone: a Temporal activity retried after its worker died);
        otherwise the row's stored outcome is returned: a ``sent`` row is never sent again.

        Raises InvalidEmail when the message has no recipient or an invalid one (nothing written)."""
        row = _row(tenant, source_key, kind, message, seal_key)
        params = {**row, "take_over": take_over, "lease": self.settings.email_lease_seconds}
        claimed = (await conn.execute(QUEUE_AND_CLAIM, params)).first()
        if claimed is not None:
            return Claim(**claimed._mapping)
        stored = (await conn.execute(STORED_OUTCOME, row)).one()
        return EmailResult(
            email_sent=stored.status == "sent",
            message_id=stored.message_id,
            provider=stored.provider or self.provider.name,
            location=stored.location,
            error=stored.last_error,
            status=stored.status,
            attempts=stored.attempts,
        )

    async def send(self, claim: Claim) -> EmailResult:
        """One delivery attempt of a claimed row: open it, hand it to the provider, mark the row ``sent`` or
        ``failed`` (only while the claim is still this one), count it (psa.metrics). Never raises for a delivery
        problem: the outcome says what happened, its error free of the message's secret."""
        try:
            raw = claim.message
            if claim.sealed:
                sealer = Sealer(self.settings.resolved_codec_key())
                raw = sealer.unseal(raw, _row_binding(claim.tenant, claim.email_id))
        except InvalidTag:
            return await self._failed(claim, "InvalidTag: the sealed message does not open with this codec key", True)
        except ConfigurationError as exc:
            return await self._failed(claim, f"ConfigurationError: {exc}", False)
        message = message_from_bytes(raw, policy=policy.default)
        try:
            result = await self.provider.send(message)
        except Exception as exc:  # noqa: BLE001 - any provider failure is recorded on the row
            error = f"{type(exc).__name__}: {exc}"
            return await self._failed(claim, _scrub(error, message) if claim.sealed else error, is_permanent(exc))
        await self._record(claim, MARK_SENT, "sent", provider=result.provider, location=result.location)
        log.info("%s email sent %s provider=%s location=%s", claim.kind, claim, result.provider, result.location)
        return result.model_copy(update={"message_id": claim.message_id, "status": "sent", "attempts": claim.attempts})

    async def _failed(self, claim: Claim, error: str, permanent: bool) -> EmailResult:
        """Mark the claimed row ``failed`` with ``error``, due again after the backoff unless ``permanent`` or out
        of attempts."""
        retry = not permanent and claim.attempts < self.settings.email_max_attempts
        delay = min(self.settings.email_retry_seconds * 2 ** (claim.attempts - 1), MAX_RETRY_DELAY_SECONDS)
        provider = self.provider.name
        await self._record(claim, MARK_FAILED, "failed", provider=provider, error=error, delay=delay if retry else None)
        then = f"next attempt in {delay:g} s" if retry else "no further attempt"
        log.warning("%s email not sent %s provider=%s (%s): %s", claim.kind, claim, provider, then, error)
        return EmailResult(
            email_sent=False,
            message_id=claim.message_id,
            provider=provider,
            error=error,
            status="failed",
            attempts=claim.attempts,
        )

    async def _record(self, claim: Claim, statement: TextClause, outcome: str, **values: object) -> None:
        """Write the attempt's outcome on the claimed row (only while the claim is still this one: same status
        ``sending`` and attempt) and count it (psa.metrics)."""
        async with tenant_transaction(self.engine, claim.tenant) as conn:
            await conn.execute(statement, {"t": claim.tenant, "id": claim.email_id, "n": claim.attempts, **values})
        metrics.record_email(claim.kind, outcome)

    async def deliver_due(self, *, tenant: UUID | None = None, limit: int = 100) -> int:
        """Claim and send due rows one at a time, oldest first, across tenants (or only ``tenant``'s), up to
        ``limit``; rows another sender holds are skipped. Returns how many were sent. The worker's email sender
        runs this every half second."""
        sent = 0
        for _ in range(limit):
            async with tenant_transaction(self.engine, tenant) as conn:
                row = (
                    await conn.execute(CLAIM_NEXT, {"t": tenant, "lease": self.settings.email_lease_seconds})
                ).first()
            if row is None:
                break
            sent += (await self.send(Claim(**row._mapping))).email_sent
        return sent
