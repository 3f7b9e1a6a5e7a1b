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


def _functions(url: str, name: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname = :name"), {"name": name}).scalar_one()
    finally:
        engine.dispose()


def test_the_superseded_key_lookup_is_dropped_and_a_downgrade_recreates_it(scratch_url: str):
    """``psa_api_key_principal`` (0006, superseded by ``psa_api_authenticate`` in 0008) is gone at head; going
    back past migration 0011 brings it back, callable by the API role, and going forward drops it again."""
    before_0011 = ScriptDirectory.from_config(alembic_config(scratch_url)).get_revision("0011").down_revision
    upgrade(scratch_url)
    assert _functions(scratch_url, "psa_api_key_principal") == 0
    assert _functions(scratch_url, "psa_api_authenticate") == 1

    downgrade(scratch_url, before_0011)
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
