"""AES-256-GCM sealing with the settings' codec key (``Settings.resolved_codec_key()``), the one cipher psa uses
for secrets at rest and in Temporal history: the payload codec (psa.temporal) and sealed emails in the email outbox
(psa.email.outbox); docs/provisioning.md, "Secrets"."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class Sealer:
    """Seals and opens bytes under one key. Raises ``ValueError`` when ``key`` is not 16, 24 or 32 bytes (psa
    uses 32: AES-256)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, associated_data: bytes | None = None) -> bytes:
        """``nonce || ciphertext+tag`` of ``plaintext``, with a fresh random 96-bit nonce. ``associated_data`` is
        authenticated, not stored: the same value must be given to :meth:`unseal`."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def unseal(self, sealed: bytes, associated_data: bytes | None = None) -> bytes:
        """The plaintext of a :meth:`seal` result. Raises ``cryptography.exceptions.InvalidTag`` when ``sealed``
        was sealed under another key or associated data, or was altered."""
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
