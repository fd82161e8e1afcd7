"""Acceptance fixtures: a real ``jobqueue serve`` process and a loopback webhook target."""

from tests.support.fixtures import serve, webhook_target

__all__ = ["serve", "webhook_target"]
