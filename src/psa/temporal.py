"""Temporal client wiring shared by the worker, the CLI and the API: pydantic payloads encrypted with
AES-256-GCM (docs/provisioning.md, "Secrets")."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from psa.config import Settings
from psa.crypto import Sealer

ENCODING = b"binary/encrypted-aes256gcm"


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload: ``metadata.encoding = binary/encrypted-aes256gcm``, data = nonce || ciphertext
    of the serialised original payload. Decoding leaves payloads with another encoding untouched.

    Raises ``cryptography.exceptions.InvalidTag`` when a payload was encrypted under another key.
    """

    def __init__(self, key: bytes) -> None:
        self._sealer = Sealer(key)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(metadata={"encoding": ENCODING}, data=self._sealer.seal(payload.SerializeToString()))
            for payload in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
                continue
            plain = self._sealer.unseal(payload.data)
            original = Payload()
            original.ParseFromString(plain)
            out.append(original)
        return out


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic JSON payloads wrapped by the AES-GCM codec keyed from settings."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(settings.resolved_codec_key()))


async def connect(settings: Settings, *, address: str | None = None) -> Client:
    """Connect to Temporal (address from settings unless given) with the project's data converter."""
    return await Client.connect(
        address or settings.resolved_temporal_address(),
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
