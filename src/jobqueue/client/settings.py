"""Where the client finds the server, read from arguments, the environment or ``.env``."""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_URL = "http://127.0.0.1:3000"


class ClientSettings(BaseSettings):
    """The client's settings: ``JOBQUEUE_URL``, ``JOBQUEUE_API_KEY``, ``JOBQUEUE_TIMEOUT`` and
    ``JOBQUEUE_RETRIES`` (arguments given to a client win over them)."""

    model_config = SettingsConfigDict(
        env_prefix="JOBQUEUE_", env_file=".env", extra="ignore", frozen=True
    )

    url: str = DEFAULT_URL
    """The server's base URL (``jobqueue serve`` listens on http://127.0.0.1:3000 by default)."""
    api_key: str | None = None
    """Sent as ``Authorization: Bearer <key>``: needed when the server sets API_KEYS."""
    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for each request's connection, each read and each write."""
    retries: int = Field(default=3, ge=0, le=20)
    """Further tries after a connection error or a 503, with exponential backoff."""


def load_settings() -> ClientSettings:
    """The settings from the environment and ``.env``; a bad value is a ``ValueError``
    naming its variable."""
    try:
        return ClientSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"JOBQUEUE_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"invalid client setting: {problems}") from None
