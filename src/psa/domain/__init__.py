"""Shared domain models. Each function takes an explicit connection (or transaction) and a tenant id and
needs no logged-in user, so the CLI, Temporal activities and workflow actions share one code path."""
