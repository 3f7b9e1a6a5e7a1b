"""Temporary passwords, bcrypt hashing and email normalisation (psa.domain.users)."""

from __future__ import annotations

import string

import bcrypt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psa.domain.errors import ValidationError
from psa.domain.users import (
    PASSWORD_CLASSES,
    PASSWORD_LENGTH,
    generate_temporary_password,
    hash_password,
    verify_password,
)
from psa.domain.values import EMAIL_MAX, normalize_email
from tests.helpers import examples

SYMBOLS = PASSWORD_CLASSES[3]
ALPHABET = set("".join(PASSWORD_CLASSES))


# -- generate_temporary_password ----------------------------------------------------------------


def assert_strong(password: str, length: int = PASSWORD_LENGTH) -> None:
    assert len(password) == length
    assert set(password) <= ALPHABET
    assert any(c in string.ascii_uppercase for c in password), password
    assert any(c in string.ascii_lowercase for c in password), password
    assert any(c in string.digits for c in password), password
    assert any(c in SYMBOLS for c in password), password


def test_temporary_password_has_16_chars_and_every_class_over_many_draws():
    passwords = [generate_temporary_password() for _ in range(500)]
    for password in passwords:
        assert_strong(password)
    assert PASSWORD_LENGTH == 16
    # secrets-based: 500 draws of 16 characters from 74 symbols never collide in practice.
    assert len(set(passwords)) == len(passwords)


def test_temporary_password_differs_each_call():
    assert generate_temporary_password() != generate_temporary_password()


@given(st.integers(min_value=len(PASSWORD_CLASSES), max_value=128))
@settings(max_examples=examples(200), deadline=None)
def test_temporary_password_of_any_allowed_length_has_every_class(length: int):
    assert_strong(generate_temporary_password(length), length)


@pytest.mark.parametrize("length", [0, 1, len(PASSWORD_CLASSES) - 1])
def test_temporary_password_too_short_to_hold_every_class_is_refused(length: int):
    with pytest.raises(ValueError):
        generate_temporary_password(length)


def test_symbol_positions_are_not_fixed():
    """The four guaranteed characters are shuffled, not always in front."""
    firsts = {generate_temporary_password()[0] in string.ascii_uppercase for _ in range(200)}
    assert firsts == {True, False}


# -- hash_password / verify_password ---------------------------------------------------------------


def test_hash_is_bcrypt_2b_with_the_given_rounds_and_round_trips():
    password = generate_temporary_password()
    hashed = hash_password(password, rounds=4)
    assert hashed.startswith("$2b$04$")
    assert len(hashed) == 60
    assert verify_password(password, hashed)
    assert not verify_password(password + "x", hashed)
    assert bcrypt.checkpw(password.encode(), hashed.encode())


def test_hash_rounds_are_encoded_in_the_hash():
    assert hash_password("correct horse", rounds=5).startswith("$2b$05$")


def test_hash_is_salted():
    a, b = hash_password("same password", rounds=4), hash_password("same password", rounds=4)
    assert a != b
    assert verify_password("same password", a)
    assert verify_password("same password", b)


@given(st.text(min_size=1, max_size=18))
@settings(max_examples=examples(25), deadline=None)
def test_hash_round_trips_arbitrary_text(password: str):
    # At most 18 code points of up to 4 UTF-8 bytes each stays within bcrypt's 72-byte input limit.
    hashed = hash_password(password, rounds=4)
    assert verify_password(password, hashed)
    assert not verify_password(password + "!", hashed)


@pytest.mark.parametrize(
    "malformed",
    ["", "not-a-hash", "$2b$04$short", "$2b$99$" + "a" * 53, "plaintext-password-stored-by-mistake"],
)
def test_verify_on_malformed_hash_is_false(malformed: str):
    assert verify_password("whatever", malformed) is False


# -- normalize_email -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John.Doe@Example.COM", "john.doe@example.com"),
        ("  admin@acme.io  ", "admin@acme.io"),
        ("a@b.co", "a@b.co"),
        ("first+tag@Sub.Example.org", "first+tag@sub.example.org"),
    ],
)
def test_normalize_email_lower_cases_and_trims(raw: str, expected: str):
    assert normalize_email(raw) == expected


@given(
    st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,15}", fullmatch=True),
    st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,15}", fullmatch=True),
)
@settings(max_examples=examples(100), deadline=None)
def test_normalize_email_is_lower_case_and_idempotent(local: str, domain: str):
    normalized = normalize_email(f"{local}@{domain}.com")
    assert normalized == f"{local}@{domain}.com".lower()
    assert normalize_email(normalized) == normalized


@pytest.mark.parametrize("blank", [None, "", "   ", "\t\n"])
def test_normalize_email_rejects_blank(blank):
    with pytest.raises(ValidationError) as exc:
        normalize_email(blank)
    assert exc.value.field == "email"
    assert "required" in exc.value.message


@pytest.mark.parametrize(
    "invalid",
    [
        "no-at-sign",
        "two@@example.com",
        "@example.com",
        "user@",
        "user name@example.com",
        # email-validator requires a dot in the domain: a bare host (no TLD) is rejected, deliberately.
        "a@b",
        "admin@localhost",
        # special-use / reserved names are rejected too (with check_deliverability=False).
        "admin@example.invalid",
        "admin@[127.0.0.1]",
    ],
)
def test_normalize_email_rejects_invalid_syntax(invalid: str):
    with pytest.raises(ValidationError) as exc:
        normalize_email(invalid)
    assert exc.value.field == "email"
    assert exc.value.code == "VALIDATION_ERROR"


def test_normalize_email_rejects_longer_than_254():
    # Every part is individually legal (64-char local part, 63-char labels); only the total is too long.
    too_long = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 63]) + ".com"
    assert len(too_long) == 260 > EMAIL_MAX
    with pytest.raises(ValidationError) as exc:
        normalize_email(too_long)
    assert exc.value.field == "email"
    assert str(EMAIL_MAX) in exc.value.message


def test_normalize_email_reports_the_given_field_name():
    with pytest.raises(ValidationError) as exc:
        normalize_email("nope", field="admin_user.email")
    assert exc.value.field == "admin_user.email"
    assert exc.value.to_dict() == {
        "code": "VALIDATION_ERROR",
        "message": exc.value.message,
        "field": "admin_user.email",
    }
    with pytest.raises(ValidationError) as exc:
        normalize_email("", field="contact.email")
    assert exc.value.field == "contact.email"
