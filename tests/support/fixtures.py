"""Fixtures for the suites that drive a real process; conftest files import them by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve import ServeFactory
from tests.support.target import WebhookTarget


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeFactory]:
    """Start ``jobqueue serve`` (or ``api``) processes in ``tmp_path``; all stopped at teardown."""
    factory = ServeFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def webhook_target() -> Iterator[WebhookTarget]:
    """A loopback webhook receiver answering 200 unless a test scripts otherwise."""
    with WebhookTarget() as target:
        yield target
