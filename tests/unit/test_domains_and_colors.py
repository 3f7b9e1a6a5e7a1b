"""Pure rules of the shared models: domain extraction (psa.domain.clients.extract_domain), tag text
validation and tag colours (psa.domain.tags)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from psa.domain.clients import extract_domain
from psa.domain.errors import ValidationError
from psa.domain.tags import DEFAULT_TEXT_COLOR, tag_colors, validate_tag_text

LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)

# -- extract_domain --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.shop.example.co.uk/x", "example.co.uk"),
        ("http://Example.COM", "example.com"),
        ("example.com", "example.com"),
        ("www.example.com/path?q=1#frag", "example.com"),
        ("https://example.com.:8443/", "example.com"),
        ("  https://sub.example.org  ", "example.org"),
        ("https://foo.github.io", "github.io"),  # private PSL section ignored: github.io is the registration
        ("https://bücher.de", "bücher.de"),
        ("https://xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("http://127.0.0.1/admin", None),
        ("https://[2001:db8::1]/", None),
        ("http://localhost:3000", None),
        ("https://intranet", None),
        ("https://co.uk", None),
        ("ftp://example.com", None),
        ("mailto:someone@example.com", None),
        ("https://user:pass@example.com", None),
        ("https://exa mple.com", None),
        ("https://[broken", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_extract_domain_examples(url, domain):
    assert extract_domain(url) == domain


def input_host(value: str) -> str | None:
    """The host of ``value`` as extract_domain documents it: ``https://`` is prefixed when ``://`` is missing."""
    candidate = value.strip()
    return urlsplit(candidate if "://" in candidate else "https://" + candidate).hostname


@given(st.text())
def test_extract_domain_never_raises_and_returns_a_registered_domain_of_the_input_host(value):
    domain = extract_domain(value)
    if domain is None:
        return
    assert domain == domain.lower()
    assert "." in domain
    assert all(domain.split("."))
    host = input_host(value).rstrip(".")
    assert host == domain or host.endswith("." + domain)


@given(st.lists(LABEL, max_size=3), LABEL, st.sampled_from(["com", "org", "co.uk", "com.au", "de"]))
def test_extract_domain_of_generated_urls(subdomains, label, suffix):
    host = ".".join([*subdomains, label, suffix])
    assert extract_domain(f"https://{host}/some/path") == f"{label}.{suffix}"


@given(LABEL)
def test_www_label_co_uk(label):
    assert extract_domain(f"https://www.{label}.co.uk") == f"{label}.co.uk"
    assert extract_domain(f"https://www.{label.upper()}.co.uk") == f"{label}.co.uk"


# -- tag text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("VIP", "VIP"),
        ("  PSA Customer \n", "PSA Customer"),
        ("\u00a0nbsp\ufeff", "nbsp"),  # JavaScript trim() whitespace
        ("x" * 50, "x" * 50),
        ("a-b_c !@#$%^&*()+=[]{};':\",./<>?", "a-b_c !@#$%^&*()+=[]{};':\",./<>?"),
        ("two\twords", "two\twords"),
    ],
)
def test_valid_tag_text_is_trimmed(raw, cleaned):
    assert validate_tag_text(raw) == cleaned


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Tag text is required"),
        (" \t\n", "Tag text is required"),
        (None, "Tag text is required"),
        ("x" * 51, "Tag text too long (max 50 characters)"),
        ("😀" * 26, "Tag text too long (max 50 characters)"),  # 52 UTF-16 code units
        ("😀" * 25, "Tag text contains invalid characters"),
        ("café", "Tag text contains invalid characters"),
        ("a|b", "Tag text contains invalid characters"),
        ("a~b", "Tag text contains invalid characters"),
        ("a`b", "Tag text contains invalid characters"),
        ("a\\b", "Tag text contains invalid characters"),
        ("ok\x00", "Tag text contains invalid characters"),
    ],
)
def test_invalid_tag_text(raw, message):
    with pytest.raises(ValidationError) as exc:
        validate_tag_text(raw)
    assert (exc.value.message, exc.value.field) == (message, "tag_text")


# -- tag colours -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag_text", "background"),
    [
        ("PSA Customer", "#BEC5F4"),
        ("AlgaDesk Customer", "#BEC5F4"),  # the hash passes -6.6e9: only the shift is 32-bit
        ("Test Tag", "#BEECF4"),
        ("a", "#D3F4BE"),
        ("hello world", "#F4BED7"),
        ("VIP", "#F4D8BE"),
    ],
)
def test_tag_colors_match_the_reference(tag_text, background):
    assert tag_colors(tag_text) == (background, DEFAULT_TEXT_COLOR)


@given(st.text())
def test_tag_colors_are_pastel_hex(tag_text):
    background, foreground = tag_colors(tag_text)
    assert re.fullmatch(r"#[0-9A-F]{6}", background)
    assert foreground == DEFAULT_TEXT_COLOR == "#2C3E50"
    channels = [int(background[i : i + 2], 16) for i in (1, 3, 5)]
    assert max(channels) == 0xF4  # HSL(h, 70 %, 85 %) extremes
    assert min(channels) == 0xBE
