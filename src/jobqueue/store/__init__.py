"""Persistence: the jobs table (the source of truth) and the dead-letter table."""
