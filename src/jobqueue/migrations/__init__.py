"""Alembic migrations; one history valid for SQLite and PostgreSQL."""
