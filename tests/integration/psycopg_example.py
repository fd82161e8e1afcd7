from typing import Any
from uuid import UUID

import psycopg

import jobqueue


def place_order(conn: psycopg.Connection[Any], email: str, total_cents: int) -> UUID:
    """Store the order and its receipt e-mail together: both, or neither."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO orders (email, total_cents) VALUES (%s, %s)", (email, total_cents)
        )
        receipt = {"to": email, "subject": f"Your order of {total_cents / 100:.2f} EUR"}
        return jobqueue.enqueue(conn, "send-email", receipt)
