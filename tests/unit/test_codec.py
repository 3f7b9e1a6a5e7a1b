"""AES-256-GCM payload codec and the project's data converter (psa.temporal), plus codec-key settings."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from psa.config import ConfigurationError, Settings
from psa.crypto import NONCE_BYTES
from psa.provisioning.types import AdminUserCreated, CancelSignal, TenantCreationResult
from psa.temporal import ENCODING, EncryptionCodec, data_converter
from tests.helpers import examples

PASSWORD = "Tmp-Pa55word!#xy"


def key() -> bytes:
    return os.urandom(32)


def json_payload(data: bytes, **metadata: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain", **metadata}, data=data)


def settings_with(codec_key: str, tmp_path) -> Settings:
    # state_dir under tmp_path: a missing key never falls back to a developer's .psa/codec.key.
    return Settings(state_dir=tmp_path, codec_key=SecretStr(codec_key))


# -- EncryptionCodec -------------------------------------------------------------------------------


async def test_encode_decode_round_trip():
    codec = EncryptionCodec(key())
    originals = [
        json_payload(b'{"temporary_password": "' + PASSWORD.encode() + b'"}', messageType=b"AdminUserCreated"),
        Payload(metadata={"encoding": b"binary/null"}, data=b""),
        json_payload(b"[1, 2, 3]"),
    ]
    encoded = await codec.encode(originals)
    assert len(encoded) == len(originals)
    for payload in encoded:
        assert payload.metadata["encoding"] == ENCODING
        assert set(payload.metadata) == {"encoding"}  # original metadata is inside the ciphertext
    decoded = await codec.decode(encoded)
    assert decoded == originals


async def test_encoded_data_does_not_contain_the_plaintext():
    codec = EncryptionCodec(key())
    secret = json_payload(f'{{"password": "{PASSWORD}", "type": "AdminUserCreated"}}'.encode())
    [encoded] = await codec.encode([secret])
    assert PASSWORD.encode() not in encoded.data
    assert b"password" not in encoded.data
    assert b"AdminUserCreated" not in encoded.data
    assert b"json/plain" not in encoded.data
    assert PASSWORD.encode() not in encoded.SerializeToString()


async def test_same_payload_encrypts_differently_each_time():
    codec = EncryptionCodec(key())
    payload = json_payload(b'"same"')
    [a], [b] = await codec.encode([payload]), await codec.encode([payload])
    assert a.data[:NONCE_BYTES] != b.data[:NONCE_BYTES]
    assert a.data != b.data
    assert await codec.decode([a, b]) == [payload, payload]


async def test_a_different_key_fails_to_decode():
    [encoded] = await EncryptionCodec(key()).encode([json_payload(PASSWORD.encode())])
    with pytest.raises(InvalidTag):
        await EncryptionCodec(key()).decode([encoded])


async def test_tampered_ciphertext_fails_to_decode():
    codec = EncryptionCodec(key())
    [encoded] = await codec.encode([json_payload(b'"hello"')])
    tampered = bytearray(encoded.data)
    tampered[-1] ^= 0x01
    with pytest.raises(InvalidTag):
        await codec.decode([Payload(metadata=dict(encoded.metadata), data=bytes(tampered))])


async def test_payloads_with_another_encoding_pass_through_decode_untouched():
    codec = EncryptionCodec(key())
    plain = [
        json_payload(b'{"a": 1}'),
        Payload(metadata={"encoding": b"binary/plain"}, data=b"\x00\x01"),
        Payload(metadata={}, data=b"no encoding at all"),
    ]
    [encrypted] = await codec.encode([json_payload(b'"secret"')])
    decoded = await codec.decode([plain[0], encrypted, plain[1], plain[2]])
    assert decoded == [plain[0], json_payload(b'"secret"'), plain[1], plain[2]]


async def test_empty_sequences():
    codec = EncryptionCodec(key())
    assert await codec.encode([]) == []
    assert await codec.decode([]) == []


@pytest.mark.parametrize("size", [0, 15, 31, 33])
def test_codec_rejects_a_key_that_is_not_a_valid_aes_size(size: int):
    with pytest.raises(ValueError):
        EncryptionCodec(os.urandom(size))


@given(
    st.binary(max_size=2048),
    st.dictionaries(st.text(min_size=1, max_size=16), st.binary(max_size=32), max_size=4),
)
@settings(max_examples=examples(100), deadline=None)
async def test_round_trip_of_arbitrary_payloads(data: bytes, metadata: dict[str, bytes]):
    codec = EncryptionCodec(b"k" * 32)
    payload = Payload(metadata=metadata, data=data)
    [encoded] = await codec.encode([payload])
    assert len(encoded.data) >= NONCE_BYTES + 16  # nonce + GCM tag at least
    assert await codec.decode([encoded]) == [payload]


# -- data_converter --------------------------------------------------------------------------------


async def test_data_converter_round_trips_pydantic_models(tmp_path):
    converter = data_converter(settings_with(base64.b64encode(key()).decode(), tmp_path))
    assert isinstance(converter, DataConverter)
    assert isinstance(converter.payload_codec, EncryptionCodec)
    created = AdminUserCreated(user_id="u-1", role_id="r-1", temporary_password=PASSWORD)
    result = TenantCreationResult(
        tenant_id="t-1",
        admin_user_id="u-1",
        client_id="c-1",
        temporary_password=PASSWORD,
        email_sent=False,
        email_error="smtp down",
        created_at="2026-01-01T00:00:00Z",
    )
    payloads = await converter.encode([created, result, CancelSignal(reason="stop"), "plain string", 42])
    for payload in payloads:
        assert payload.metadata["encoding"] == ENCODING
        assert PASSWORD.encode() not in payload.data
    decoded = await converter.decode(payloads, [AdminUserCreated, TenantCreationResult, CancelSignal, str, int])
    assert decoded == [created, result, CancelSignal(reason="stop"), "plain string", 42]
    assert isinstance(decoded[0], AdminUserCreated)


async def test_data_converters_with_different_keys_do_not_interoperate(tmp_path):
    a = data_converter(settings_with(base64.b64encode(key()).decode(), tmp_path))
    b = data_converter(settings_with(base64.b64encode(key()).decode(), tmp_path))
    payloads = await a.encode([CancelSignal(reason="x")])
    with pytest.raises(InvalidTag):
        await b.decode(payloads, [CancelSignal])


async def test_data_converter_with_the_same_key_interoperates(tmp_path):
    encoded_key = base64.b64encode(key()).decode()
    a, b = data_converter(settings_with(encoded_key, tmp_path)), data_converter(settings_with(encoded_key, tmp_path))
    payloads = await a.encode([CancelSignal(reason="x", cancelled_by="ops")])
    assert await b.decode(payloads, [CancelSignal]) == [CancelSignal(reason="x", cancelled_by="ops")]


# -- Settings.resolved_codec_key -------------------------------------------------------------------


def test_resolved_codec_key_accepts_base64_of_32_bytes(tmp_path):
    raw = key()
    assert settings_with(base64.b64encode(raw).decode(), tmp_path).resolved_codec_key() == raw


def test_resolved_codec_key_rejects_16_bytes(tmp_path):
    with pytest.raises(ConfigurationError, match="32 bytes"):
        settings_with(base64.b64encode(os.urandom(16)).decode(), tmp_path).resolved_codec_key()


def test_resolved_codec_key_rejects_64_bytes(tmp_path):
    with pytest.raises(ConfigurationError, match="32 bytes"):
        settings_with(base64.b64encode(os.urandom(64)).decode(), tmp_path).resolved_codec_key()


@pytest.mark.parametrize("bad", ["not base64!!", "@@@@", "abc", "Zm9v YmFy"])
def test_resolved_codec_key_rejects_non_base64(bad: str, tmp_path):
    with pytest.raises(ConfigurationError, match="base64"):
        settings_with(bad, tmp_path).resolved_codec_key()


def test_resolved_codec_key_missing_everywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("PSA_CODEC_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="codec key"):
        Settings(state_dir=tmp_path).resolved_codec_key()


def test_resolved_codec_key_from_the_key_file(tmp_path, monkeypatch):
    monkeypatch.delenv("PSA_CODEC_KEY", raising=False)
    raw = key()
    (tmp_path / "codec.key").write_text(base64.b64encode(raw).decode() + "\n")
    assert Settings(state_dir=tmp_path).resolved_codec_key() == raw


def test_data_converter_refuses_a_bad_key(tmp_path):
    with pytest.raises(ConfigurationError):
        data_converter(settings_with(base64.b64encode(os.urandom(16)).decode(), tmp_path))
