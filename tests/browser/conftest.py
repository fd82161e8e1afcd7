"""Browser fixtures: Debian's headless Chromium driven by Playwright, and served dashboards.

Playwright's own browser download cannot work here (no internet): the tests use the
``chromium`` package that ``make test`` installs. Without it they skip, saying why, and under
CI=true they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.services import unavailable
from tests.support.fixtures import serve
from tests.support.serve import ServeProcess, running

__all__ = ["serve"]

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HANDLERS_DIR = Path(__file__).parent / "handler_modules"
HANDLERS = {"JOBQUEUE_HANDLERS": "dashboard_handlers", "PYTHONPATH": str(HANDLERS_DIR)}
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for this module's tests."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            unavailable(f"{CHROMIUM} did not start: {exc}")
            raise
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def board_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One ``jobqueue serve`` without keys, with the test handlers, shared by a module's tests
    (a start takes seconds): each test makes its own jobs and checks those, or changes."""
    workdir = tmp_path_factory.mktemp("board")
    with running(workdir, {**HANDLERS, "JOB_BACKOFF_MS": "100"}) as server:
        yield server


class PageProblems:
    """What went wrong inside the page: uncaught errors and refusals by the CSP."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def on_console(self, message: ConsoleMessage) -> None:
        """Keep CSP refusals (a 401 logged as a failed load is expected, and kept out)."""
        if "Content Security Policy" in message.text:
            self.errors.append(f"console: {message.text}")

    def on_page_error(self, error: PlaywrightError) -> None:
        """Keep an uncaught exception of the page's script."""
        self.errors.append(f"page error: {error}")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) at 1280 px; fails the test if its script threw or
    the CSP refused something."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    problems = PageProblems()
    tab.on("console", problems.on_console)
    tab.on("pageerror", problems.on_page_error)
    try:
        yield tab
    finally:
        context.close()
    assert not problems.errors, problems.errors
