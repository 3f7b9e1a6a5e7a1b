"""Database access: engine and transactions, table metadata, Alembic migrations."""
