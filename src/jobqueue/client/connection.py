"""What both clients need before sending anything: the URL, headers, timeout and retry rule."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from jobqueue import __version__
from jobqueue.client.errors import ConnectError
from jobqueue.client.retrying import RetryPolicy
from jobqueue.client.settings import load_settings


@dataclass(frozen=True, slots=True)
class Connection:
    """Where and how a client talks to the server."""

    url: str
    headers: dict[str, str]
    timeout: httpx.Timeout
    policy: RetryPolicy

    @classmethod
    def resolve(
        cls,
        url: str | None,
        api_key: str | None,
        timeout: float | None,
        retries: int | None,
        backoff: float = 0.2,
    ) -> Connection:
        """The arguments given, the rest from ``ClientSettings`` (environment, ``.env``)."""
        settings = load_settings()
        key = api_key if api_key is not None else settings.api_key
        headers = {"User-Agent": f"jobqueue-client/{__version__}", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return cls(
            url=checked_url(url or settings.url),
            headers=headers,
            timeout=httpx.Timeout(timeout if timeout is not None else settings.timeout),
            policy=RetryPolicy(retries if retries is not None else settings.retries, backoff),
        )

    def unreachable(self, error: httpx.TransportError) -> ConnectError:
        """The error for a call that got no answer, naming the URL and the cause."""
        cause = str(error) or type(error).__name__
        if isinstance(error, httpx.TimeoutException):
            cause = f"no answer within {self.timeout.read:g} s ({cause})"
        return ConnectError(f"cannot reach jobqueue at {self.url}: {cause}", self.url)


def checked_url(url: str) -> str:
    """``url`` without its trailing slash, if it is an absolute http(s) URL; else ValueError."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{url!r} is not an http:// or https:// URL of a jobqueue server")
    return url.rstrip("/")
