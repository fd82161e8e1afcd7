"""Queues: what triggers processing. The jobs table itself, or BullMQ on Redis."""
