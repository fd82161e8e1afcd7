"""The interop tests use the Redis-mode fixtures of the integration suite."""

from tests.integration.conftest import redis_databases, redis_mode, redis_url

__all__ = ["redis_databases", "redis_mode", "redis_url"]
