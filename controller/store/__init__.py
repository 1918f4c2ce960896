"""Durable state: models, engine creation and alembic migrations."""
