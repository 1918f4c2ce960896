"""Alembic migrations for the controller's database (strictly linear; see docs/operations.md)."""
