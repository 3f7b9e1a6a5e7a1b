"""Input rules of tenant provisioning (psa.provisioning.validation.normalize_request), no I/O."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psa.config import Settings
from psa.domain.errors import ValidationError
from psa.domain.seeds import SEED_SETS, seed_set
from psa.domain.values import NAME_MAX, PRODUCT_CODES, SLUG_MAX, tenant_slug
from psa.email import product_name
from psa.provisioning.types import AdminUser, TenantCreationInput
from psa.provisioning.validation import normalize_request
from tests.helpers import examples


def make_request(**overrides) -> TenantCreationInput:
    admin = overrides.pop("admin_user", None) or AdminUser(
        **{
            "first_name": "John",
            "last_name": "Doe",
            "email": "john.doe@acme.com",
            **overrides.pop("admin", {}),
        }
    )
    return TenantCreationInput(**{"tenant_name": "Acme Corp", "admin_user": admin, **overrides})


def field_of(request: TenantCreationInput) -> str | None:
    with pytest.raises(ValidationError) as exc:
        normalize_request(request)
    assert exc.value.code == "VALIDATION_ERROR"
    return exc.value.field


# -- happy path ------------------------------------------------------------------------------------


def test_valid_request_is_normalised_and_slugged():
    validated = normalize_request(
        make_request(
            tenant_name="  Acme Corp  ",
            company_name="  Acme Corporation ",
            client_name="   ",
            contract_line=" Gold ",
            admin={"first_name": " John ", "last_name": " Doe\t", "email": "  John.Doe@ACME.com "},
        )
    )
    assert validated.slug == "acme-corp"
    clean = validated.input
    assert clean.tenant_name == "Acme Corp"
    assert clean.company_name == "Acme Corporation"
    assert clean.client_name is None  # blank optional names become None
    assert clean.contract_line == "Gold"
    assert clean.admin_user.first_name == "John"
    assert clean.admin_user.last_name == "Doe"
    assert clean.admin_user.email == "john.doe@acme.com"
    assert clean.admin_user.password is None


def test_request_itself_is_not_mutated():
    request = make_request(tenant_name="  Acme Corp  ")
    normalize_request(request)
    assert request.tenant_name == "  Acme Corp  "


def test_slug_of_acme_corp():
    assert normalize_request(make_request(tenant_name="Acme Corp")).slug == "acme-corp"
    assert tenant_slug("Acme Corp") == "acme-corp"


def test_optional_fields_accepted():
    validated = normalize_request(
        make_request(
            tenant_id=str(uuid.uuid4()),
            email_provider="smtp",
            product_code="algadesk",
            billing_source="stripe",
            license_count=1,
            admin={"password": "12345678"},
        )
    )
    assert validated.input.admin_user.password == "12345678"
    assert validated.input.product_code == "algadesk"


@pytest.mark.parametrize("provider", ["smtp", "resend", "hybrid", "microsoft"])
def test_every_tenant_email_provider_is_accepted(provider: str):
    assert normalize_request(make_request(email_provider=provider)).input.email_provider == provider


# -- tenant_name -----------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_blank_tenant_name(blank: str):
    assert field_of(make_request(tenant_name=blank)) == "tenant_name"


def test_tenant_name_of_255_chars_is_ok_256_is_not():
    assert normalize_request(make_request(tenant_name="a" * NAME_MAX)).input.tenant_name == "a" * NAME_MAX
    assert field_of(make_request(tenant_name="a" * (NAME_MAX + 1))) == "tenant_name"


def test_tenant_name_length_is_measured_after_trimming():
    name = "  " + "a" * NAME_MAX + "  "
    assert normalize_request(make_request(tenant_name=name)).input.tenant_name == "a" * NAME_MAX


@pytest.mark.parametrize("name", ["!!!", "---", "  ...  ", "@#$%^&*()"])
def test_tenant_name_without_letters_or_digits(name: str):
    assert field_of(make_request(tenant_name=name)) == "tenant_name"


@given(st.text(min_size=1, max_size=NAME_MAX))
@settings(max_examples=examples(300), deadline=None)
def test_any_tenant_name_either_slugs_cleanly_or_fails_on_tenant_name(name: str):
    try:
        validated = normalize_request(make_request(tenant_name=name))
    except ValidationError as exc:
        assert exc.field == "tenant_name"
        return
    slug = validated.slug
    assert 0 < len(slug) <= SLUG_MAX
    assert slug == slug.lower()
    assert set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert not slug.startswith("-")
    assert not slug.endswith("-")
    assert validated.input.tenant_name == name.strip()


@given(st.from_regex(r"[A-Za-z0-9]{1,8}( {1,3}[A-Za-z0-9]{1,8}){0,5}", fullmatch=True))
@settings(max_examples=examples(200), deadline=None)
def test_slug_is_lowercase_hyphenated_words(name: str):
    # At most 6 words of 8 characters: always within SLUG_MAX, so nothing is truncated.
    assert normalize_request(make_request(tenant_name=name)).slug == "-".join(name.lower().split())


def test_long_name_slug_is_capped():
    slug = normalize_request(make_request(tenant_name="word " * 50)).slug
    assert len(slug) <= SLUG_MAX
    assert slug.startswith("word-word")


# -- admin user ------------------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", "john@@acme.com", "x" * 250 + "@acme.com"])
def test_invalid_admin_email(email: str):
    assert field_of(make_request(admin={"email": email})) == "admin_user.email"


@pytest.mark.parametrize("password", ["", "1", "short", "1234567"])
def test_short_password(password: str):
    assert field_of(make_request(admin={"password": password})) == "admin_user.password"


def test_password_of_8_chars_is_ok():
    assert normalize_request(make_request(admin={"password": "abcdefgh"})).input.admin_user.password == "abcdefgh"


@pytest.mark.parametrize("which", ["first_name", "last_name"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_admin_names(which: str, blank: str):
    assert field_of(make_request(admin={which: blank})) == f"admin_user.{which}"


def test_admin_name_too_long():
    assert field_of(make_request(admin={"last_name": "x" * (NAME_MAX + 1)})) == "admin_user.last_name"


# -- enumerations and ids --------------------------------------------------------------------------


def test_unknown_email_provider():
    assert field_of(make_request(email_provider="carrier-pigeon")) == "email_provider"


def test_outbox_is_a_platform_provider_not_a_tenant_email_provider():
    assert field_of(make_request(email_provider="outbox")) == "email_provider"


@pytest.mark.parametrize("code", ["", "PSA", "crm", "carrier-pigeon"])
def test_unknown_product_code(code: str):
    assert field_of(make_request(product_code=code)) == "product_code"


def test_every_accepted_product_has_a_seed_set_and_welcome_copy():
    """Validation accepts exactly the products that have seeds (psa.domain.seeds) and a welcome email's copy."""
    assert set(SEED_SETS) == set(PRODUCT_CODES)
    for code in PRODUCT_CODES:
        assert normalize_request(make_request(product_code=code)).input.product_code == code
        assert seed_set(code).product_code == code
        assert product_name(Settings(), code)


def test_unknown_billing_source():
    assert field_of(make_request(billing_source="barter")) == "billing_source"


@pytest.mark.parametrize("count", [0, -1, -100])
def test_license_count_below_one(count: int):
    assert field_of(make_request(license_count=count)) == "license_count"


# Fixed values, so the test ids are the same every run.
@pytest.mark.parametrize(
    "tenant_id", ["", "not-a-uuid", "1234", str(uuid.UUID(int=7))[:-1], str(uuid.UUID(int=7)) + "0"]
)
def test_bad_tenant_id(tenant_id: str):
    assert field_of(make_request(tenant_id=tenant_id)) == "tenant_id"


def test_optional_name_too_long():
    assert field_of(make_request(company_name="c" * (NAME_MAX + 1))) == "company_name"
    assert field_of(make_request(client_name="c" * (NAME_MAX + 1))) == "client_name"


@pytest.mark.parametrize("password", ["x" * 73, "é" * 40], ids=["73-ascii-bytes", "80-utf8-bytes"])
def test_password_longer_than_bcrypt_limit_is_rejected_up_front(password: str):
    try:
        normalize_request(make_request(admin={"password": password}))
    except ValidationError as exc:
        assert exc.field == "admin_user.password"
    else:
        raise AssertionError("a password bcrypt cannot hash passed validation")
