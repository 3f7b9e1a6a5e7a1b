"""Alembic migrations on a scratch database, and the tenant-first key conventions of the schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import ForeignKeyConstraint, PrimaryKeyConstraint, UniqueConstraint, create_engine, inspect, text
from sqlalchemy.engine import make_url

from psa.config import Settings
from psa.db.migrate import alembic_config, downgrade, upgrade
from psa.db.schema import GLOBAL_TABLES, TENANT_TABLES, metadata

# Unique per session: several pytest sessions may share the embedded server.
SCRATCH_DB = f"psa_migrations_test_{uuid.uuid4().hex[:8]}"


def head_revision(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def user_tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names(schema="public")) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def scratch_url(base_settings: Settings) -> Iterator[str]:
    """A separate, empty database on the test server (never the shared psa_test), dropped afterwards."""
    test_url = make_url(base_settings.resolved_database_url())
    admin = test_url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
    try:
        yield test_url.set(database=SCRATCH_DB).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")


def test_upgrade_downgrade_upgrade_round_trip(scratch_url: str):
    head = head_revision(scratch_url)
    assert head is not None
    expected_tables = {t.name for t in metadata.sorted_tables}

    downgrade(scratch_url, "base")  # whatever an earlier test left behind
    assert current_revision(scratch_url) is None
    assert user_tables(scratch_url) == set()

    upgrade(scratch_url)
    assert current_revision(scratch_url) == head
    assert user_tables(scratch_url) == expected_tables

    upgrade(scratch_url)  # idempotent
    assert current_revision(scratch_url) == head

    downgrade(scratch_url, "base")
    assert current_revision(scratch_url) is None
    assert user_tables(scratch_url) == set()

    upgrade(scratch_url, "head")
    assert current_revision(scratch_url) == head
    assert user_tables(scratch_url) == expected_tables


def test_migrated_schema_matches_the_metadata(scratch_url: str):
    """The migrations and psa.db.schema agree (what `alembic revision --autogenerate` would find: nothing)."""
    upgrade(scratch_url)
    engine = create_engine(scratch_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_test_database_is_at_head(base_settings: Settings):
    url = base_settings.resolved_database_url()
    assert current_revision(url) == head_revision(url)


def test_migrated_tables_are_usable(scratch_url: str):
    upgrade(scratch_url)
    engine = create_engine(scratch_url)
    try:
        with engine.begin() as conn:
            tenant = conn.execute(
                text(
                    "INSERT INTO tenants (client_name, slug, email) VALUES ('M', 'm', 'm@example.com') RETURNING tenant"
                )
            ).scalar_one()
            conn.execute(text("INSERT INTO roles (tenant, role_name) VALUES (:t, 'Admin')"), {"t": tenant})
            assert conn.execute(text("SELECT count(*) FROM roles WHERE tenant = :t"), {"t": tenant}).scalar_one() == 1
            conn.execute(text("DELETE FROM tenants WHERE tenant = :t"), {"t": tenant})
            assert conn.execute(text("SELECT count(*) FROM roles")).scalar_one() == 0
    finally:
        engine.dispose()


# -- key conventions (docs/architecture.md, "Data model") ------------------------------------------


def test_tenant_tables_cover_every_table_with_a_tenant_column():
    assert {t.name for t in TENANT_TABLES} == {t.name for t in metadata.sorted_tables if "tenant" in t.c}
    assert "tenants" in {t.name for t in TENANT_TABLES}
    # every table is tenant-owned, except the global catalogues
    assert {t.name for t in TENANT_TABLES} | {t.name for t in GLOBAL_TABLES} == set(metadata.tables)
    assert not any("tenant" in t.c for t in GLOBAL_TABLES)


@pytest.mark.parametrize("table", TENANT_TABLES, ids=lambda t: t.name)
def test_tenant_is_the_first_primary_key_column(table):
    pk = table.primary_key
    assert isinstance(pk, PrimaryKeyConstraint)
    assert pk.columns.keys()[0] == "tenant", pk.columns.keys()
    assert not table.c.tenant.nullable


@pytest.mark.parametrize("table", [t for t in TENANT_TABLES if t.name != "tenants"], ids=lambda t: t.name)
def test_unique_constraints_and_foreign_keys_lead_with_tenant(table):
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            assert constraint.columns.keys()[0] == "tenant", (constraint.name, constraint.columns.keys())
        if isinstance(constraint, ForeignKeyConstraint):
            if constraint.referred_table in GLOBAL_TABLES:
                continue  # a global catalogue has no tenant column (a Citus reference table)
            assert constraint.column_keys[0] == "tenant", (constraint.name, constraint.column_keys)
            assert constraint.elements[0].column.name == "tenant", constraint.name
    for index in table.indexes:
        if index.unique:
            assert [c.name for c in index.columns][0] == "tenant", index.name


def test_primary_keys_in_the_database_lead_with_tenant(scratch_url: str):
    upgrade(scratch_url)
    engine = create_engine(scratch_url)
    try:
        inspector = inspect(engine)
        for table in TENANT_TABLES:
            pk = inspector.get_pk_constraint(table.name)
            assert pk["constrained_columns"][0] == "tenant", (table.name, pk)
    finally:
        engine.dispose()


# -- 0009: one key per unique name ----------------------------------------------------------------------


def _at_0008_with(url: str, sql: str, **params) -> uuid.UUID:
    """The scratch database at 0008 (before name keys) holding one tenant and what ``sql`` inserts (``:t`` is
    the tenant); the tenant's id."""
    downgrade(url, "base")
    upgrade(url, "0008")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            tenant = conn.execute(
                text(
                    "INSERT INTO tenants (client_name, slug, email) VALUES ('N', 'n', 'n@example.com') RETURNING tenant"
                )
            ).scalar_one()
            conn.execute(text(sql), {"t": tenant, **params})
    finally:
        engine.dispose()
    return tenant


def test_0009_keys_existing_names_and_merges_tag_definitions_of_one_key(scratch_url: str):
    one, two, contact = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    tenant = _at_0008_with(
        scratch_url,
        """WITH c AS (INSERT INTO clients (tenant, client_id, client_name)
                      VALUES (:t, :one, 'ΣΑΣ\u00a0Holdings'), (:t, :two, 'Globex')),
                d AS (INSERT INTO tag_definitions (tenant, tag_id, tag_text, tagged_type, created_at)
                      VALUES (:t, '00000000-0000-4000-8000-000000000001', 'VIP', 'client', now() - interval '2 days'),
                             (:t, '00000000-0000-4000-8000-000000000002', 'vip', 'client', now() - interval '1 day'),
                             (:t, '00000000-0000-4000-8000-000000000003', ' Vip', 'client', now()),
                             (:t, '00000000-0000-4000-8000-000000000004', 'vip', 'contact', now())),
                m AS (INSERT INTO tag_mappings (tenant, tag_id, tagged_id, tagged_type, created_at)
                      VALUES (:t, '00000000-0000-4000-8000-000000000002', :one, 'client', now() - interval '1 day'),
                             (:t, '00000000-0000-4000-8000-000000000003', :one, 'client', now()),
                             (:t, '00000000-0000-4000-8000-000000000002', :two, 'client', now()),
                             (:t, '00000000-0000-4000-8000-000000000004', :contact, 'contact', now())),
                s AS (INSERT INTO statuses (tenant, status_type, name, order_number)
                      VALUES (:t, 'ticket', 'In\u001fProgress', 1)),
                l AS (INSERT INTO contact_phone_type_definitions (tenant, label, normalized_label)
                      VALUES (:t, 'ΣΑΣ line', 'σας line'))
           INSERT INTO interaction_types (tenant, type_name) VALUES (:t, 'ΣΑΣ repro')""",
        one=one,
        two=two,
        contact=contact,
    )
    upgrade(scratch_url)
    engine = create_engine(scratch_url)
    try:
        with engine.connect() as conn:

            def keys(sql: str) -> list[tuple]:
                return [tuple(row) for row in conn.execute(text(sql), {"t": tenant})]

            assert keys("SELECT client_name, name_key FROM clients WHERE tenant = :t ORDER BY name_key") == [
                ("Globex", "globex"),
                ("ΣΑΣ\u00a0Holdings", "σασ holdings"),
            ]
            assert keys("SELECT name_key FROM interaction_types WHERE tenant = :t") == [("σασ repro",)]
            assert keys("SELECT name, name_key FROM statuses WHERE tenant = :t") == [
                ("In\u001fProgress", "in progress")
            ]
            assert keys("SELECT normalized_label FROM contact_phone_type_definitions WHERE tenant = :t") == [
                ("σασ line",)
            ]
            # the three client tags "VIP", "vip" and " Vip" are one: the oldest, with one mapping per record
            assert keys(
                "SELECT tag_id::text, tag_text, tagged_type, name_key FROM tag_definitions WHERE tenant = :t ORDER BY 3"
            ) == [
                ("00000000-0000-4000-8000-000000000001", "VIP", "client", "vip"),
                ("00000000-0000-4000-8000-000000000004", "vip", "contact", "vip"),
            ]
            assert sorted(keys("SELECT tag_id::text, tagged_id FROM tag_mappings WHERE tenant = :t")) == sorted(
                [
                    ("00000000-0000-4000-8000-000000000001", one),
                    ("00000000-0000-4000-8000-000000000001", two),
                    ("00000000-0000-4000-8000-000000000004", contact),
                ]
            )
    finally:
        engine.dispose()


def test_0009_refuses_names_that_become_one_and_changes_nothing(scratch_url: str):
    _at_0008_with(
        scratch_url,
        """WITH c AS (INSERT INTO clients (tenant, client_name) VALUES (:t, 'Acme'), (:t, 'ACME '))
           INSERT INTO interaction_types (tenant, type_name) VALUES (:t, 'Site Visit'), (:t, 'Site\u001cVisit')""",
    )
    with pytest.raises(RuntimeError) as refused:
        upgrade(scratch_url)
    message = str(refused.value)
    assert "clients: tenant" in message and "'ACME ', 'Acme'" in message
    assert "interaction_types: tenant" in message and "'Site\\x1cVisit', 'Site Visit'" in message
    assert "rename all but one" in message
    assert current_revision(scratch_url) == "0008"
    engine = create_engine(scratch_url)
    try:
        assert "name_key" not in {c["name"] for c in inspect(engine).get_columns("clients")}
    finally:
        engine.dispose()
    downgrade(scratch_url, "base")


def _functions(url: str, name: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname = :name"), {"name": name}).scalar_one()
    finally:
        engine.dispose()


def test_the_superseded_key_lookup_is_dropped_and_a_downgrade_recreates_it(scratch_url: str):
    """``psa_api_key_principal`` (0006, superseded by ``psa_api_authenticate`` in 0008) is gone at head; going
    back past migration 0010 brings it back, callable by the API role, and going forward drops it again."""
    before_0010 = ScriptDirectory.from_config(alembic_config(scratch_url)).get_revision("0010").down_revision
    upgrade(scratch_url)
    assert _functions(scratch_url, "psa_api_key_principal") == 0
    assert _functions(scratch_url, "psa_api_authenticate") == 1

    downgrade(scratch_url, before_0010)
    assert _functions(scratch_url, "psa_api_key_principal") == 1
    engine = create_engine(scratch_url)
    try:
        with engine.connect() as conn:
            granted = "SELECT has_function_privilege('psa_api', 'psa_api_key_principal(text)', 'EXECUTE')"
            assert conn.execute(text(granted)).scalar_one() is True
    finally:
        engine.dispose()

    upgrade(scratch_url)
    assert _functions(scratch_url, "psa_api_key_principal") == 0
