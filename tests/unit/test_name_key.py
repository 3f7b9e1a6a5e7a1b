"""psa.domain.values.name_key: the one comparison key of unique names (docs/decisions.md, "One key per unique
name"), and the schema's map from constraints to the fields they cover (psa.db.constraints)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import PrimaryKeyConstraint, UniqueConstraint

from psa.db.constraints import CONSTRAINT_FIELDS
from psa.db.schema import TENANT_TABLES, metadata
from psa.domain.values import name_key


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("ΣΑΣ repro", "σας repro"),  # final sigma
        ("σασ", "ΣΑΣ"),
        ("Acme\x1cCorp", "acme corp"),  # the information separators U+001C..U+001F are whitespace
        ("Acme\x1d\x1e\x1fCorp", "ACME CORP"),
        ("Acme\x85Corp", "acme corp"),  # NEL
        ("Acme\xa0 Corp", "acme corp"),  # NO-BREAK SPACE, and a run of whitespace
        ("  Acme\u2028Corp\t", "acme corp"),
        ("İstanbul", "i̇stanbul"),  # dotted capital I folds to i + combining dot above
        ("Straße", "STRASSE"),
        ("ﬁnance", "FINANCE"),  # compatibility ligature
        ("ＡＣＭＥ", "acme"),  # full width
        ("Ac\u200bme", "acme"),  # a zero-width space is a format character: dropped
        ("Ac\ufeffme", "ACME"),
    ],
)
def test_spellings_of_one_name_have_one_key(one, other):
    assert name_key(one) == name_key(other)


@pytest.mark.parametrize(("one", "other"), [("Acme", "Acme Corp"), ("İ", "I"), ("ı", "i"), ("Acme1", "Acme 1")])
def test_different_names_have_different_keys(one, other):
    assert name_key(one) != name_key(other)


def test_a_name_without_a_visible_character_has_an_empty_key():
    assert name_key(" \x1c\x85\xa0\u200b\ufeff ") == ""


@settings(derandomize=True, database=None, max_examples=500)
@given(st.text())
def test_the_key_is_its_own_key(name):
    key = name_key(name)
    assert name_key(key) == key
    assert key == key.strip()
    assert "  " not in key


def test_every_unique_constraint_names_its_fields():
    """Constraint violations are reported on input fields (CONFLICT naming the field): every unique constraint
    and unique index of the schema maps to fields, and a name key to the name it is the key of."""
    for table in metadata.tables.values():
        keys = [c for c in table.constraints if isinstance(c, UniqueConstraint | PrimaryKeyConstraint)]
        for constraint in [*keys, *(index for index in table.indexes if index.unique)]:
            assert CONSTRAINT_FIELDS[str(constraint.name)], constraint.name
    assert CONSTRAINT_FIELDS["uq_interaction_types_tenant_name_key"] == ("type_name",)
    assert CONSTRAINT_FIELDS["uq_tag_definitions_tenant_tagged_type_name_key"] == ("tagged_type", "tag_text")
    assert CONSTRAINT_FIELDS["uq_clients_tenant_name_key"] == ("client_name",)
    assert CONSTRAINT_FIELDS["ux_clients_customer_tenant_id"] == ("properties.tenant_id",)
    assert CONSTRAINT_FIELDS["fk_contacts_tenant_client_id_clients"] == ("client_id",)
    assert CONSTRAINT_FIELDS["ck_clients_client_type"] == ("client_type",)
    keyed = [t for t in TENANT_TABLES if "name_key" in t.c]
    assert {t.name for t in keyed} == {"clients", "interaction_types", "statuses", "tag_definitions"}
    for table in keyed:  # each key is covered by a unique constraint
        uniques = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
        assert any("name_key" in constraint.columns for constraint in uniques), table.name
