"""Reliability fixtures: real ``jobqueue`` processes to kill and stop."""

from tests.support.fixtures import serve

__all__ = ["serve"]
