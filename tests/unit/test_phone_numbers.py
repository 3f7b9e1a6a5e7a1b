"""Phone number and email normalisation of contacts (psa.domain.contacts.normalize_phone,
psa.domain.values.normalize_email): property tests with hypothesis, no I/O."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from psa.domain.contacts import normalize_phone
from psa.domain.errors import ValidationError
from psa.domain.values import normalize_email

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
NUMBER_TYPES = [value for name, value in vars(PhoneNumberType).items() if name.isupper() and name != "UNKNOWN"]
# (region, example number) for every region and number type phonenumbers' metadata has a valid example of.
EXAMPLES = [
    (region, number)
    for region in REGIONS
    for number_type in NUMBER_TYPES
    if (number := phonenumbers.example_number_for_type(region, number_type)) is not None
    and phonenumbers.is_valid_number(number)
]
FORMATS = [
    PhoneNumberFormat.E164,
    PhoneNumberFormat.INTERNATIONAL,
    PhoneNumberFormat.NATIONAL,
    PhoneNumberFormat.RFC3966,
]


@given(st.sampled_from(EXAMPLES), st.sampled_from(FORMATS), st.sampled_from(["", " ", "\t"]))
def test_any_format_of_a_valid_number_gives_its_e164_form(sample, number_format, padding):
    region, number = sample
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    formatted = padding + phonenumbers.format_number(number, number_format) + padding
    assert normalize_phone(formatted, region=region) == e164
    assert normalize_phone(e164, region="US") == e164  # E.164 does not depend on the region


def test_every_example_number_round_trips_in_every_format():
    for region, number in EXAMPLES:
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        for number_format in FORMATS:
            assert normalize_phone(phonenumbers.format_number(number, number_format), region=region) == e164


@given(
    st.one_of(st.text(max_size=40), st.from_regex(r"\+?[0-9 ().\-#/x]{0,25}", fullmatch=True)),
    st.sampled_from([*REGIONS, "us", "ZZ"]),
)
@example("", "US")
@example("   ", "US")
@example("+", "US")
@example("1" * 300, "US")
@example("(650) 253-0000", "ZZ")
def test_garbage_raises_only_validation_error(raw, region):
    try:
        result = normalize_phone(raw, region=region)
    except ValidationError as exc:
        assert exc.field == "phone_number"
        return
    assert result.startswith("+")
    assert result[1:].isdigit()
    assert normalize_phone(result, region="US") == result  # a fixed point


def test_national_numbers_use_the_region_and_errors_name_the_field():
    assert normalize_phone("(650) 253-0000") == "+16502530000"
    assert normalize_phone("020 7946 0958", region="GB") == "+442079460958"
    with pytest.raises(ValidationError, match="read as US numbers") as exc:
        normalize_phone("020 7946 0958", field="phone_numbers.2.phone_number")
    assert exc.value.field == "phone_numbers.2.phone_number"


@given(st.emails(), st.sampled_from([str, str.upper, str.title]), st.sampled_from(["", " ", "\t\n"]))
def test_email_normalisation_lower_cases_and_is_idempotent(address, recase, padding):
    try:
        normalized = normalize_email(padding + recase(address) + padding)
    except ValidationError as exc:
        assert exc.field == "email"
        return
    assert normalized == normalized.lower() == normalized.strip()
    assert normalize_email(normalized) == normalized
    assert normalize_email(address) == normalized  # case and surrounding whitespace do not matter


@given(st.text(max_size=60))
def test_email_garbage_raises_only_validation_error(raw):
    try:
        normalized = normalize_email(raw, field="additional_email_addresses.0.email_address")
    except ValidationError as exc:
        assert exc.field == "additional_email_addresses.0.email_address"
        return
    assert normalize_email(normalized) == normalized
