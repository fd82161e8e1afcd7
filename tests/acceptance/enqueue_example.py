from uuid import UUID

import sqlalchemy as sa

import jobqueue


def sign_up(engine: sa.Engine, email: str) -> UUID:
    """Store the user and their welcome e-mail together: both, or neither."""
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (email) VALUES (:email)"), {"email": email})
        return jobqueue.enqueue(conn, "send-email", {"to": email, "subject": "Welcome"})
