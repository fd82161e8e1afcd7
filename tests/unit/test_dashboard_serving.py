"""The dashboard's files: where they are served, with which headers, and outside the key check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest

from jobqueue.api.app import create_app
from jobqueue.config import Settings
from jobqueue.dashboard import CONTENT_SECURITY_POLICY, load_assets
from jobqueue.domain.jobs import JobStatus
from jobqueue.service import JobService

KEY = "s3cret"


@pytest.fixture
async def keyed_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with API_KEYS set; no route below needs the service."""
    settings = Settings(_env_file=None, api_keys=KEY)
    app = create_app(cast(JobService, object()), settings)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_the_root_redirects_to_the_dashboard(keyed_client: httpx.AsyncClient) -> None:
    response = await keyed_client.get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/dashboard"


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/dashboard", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ],
)
async def test_the_page_and_its_files_need_no_key_and_carry_a_strict_policy(
    keyed_client: httpx.AsyncClient, path: str, media_type: str
) -> None:
    response = await keyed_client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_policy_allows_no_inline_script_and_nothing_from_elsewhere() -> None:
    directives = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


async def test_the_api_still_needs_the_key(keyed_client: httpx.AsyncClient) -> None:
    refused = await keyed_client.get("/api/jobs/stats")
    assert refused.status_code == 401


async def test_a_file_not_in_the_package_is_404(keyed_client: httpx.AsyncClient) -> None:
    response = await keyed_client.get("/dashboard/nope.js")
    assert response.status_code == 404, response.text
    assert response.json()["message"] == "The dashboard has no file named 'nope.js'"


@pytest.mark.parametrize("path", ["..%2F__init__.py", "%2E%2E%2F__init__.py", "static%2Fapp.js"])
async def test_a_path_names_no_file(keyed_client: httpx.AsyncClient, path: str) -> None:
    response = await keyed_client.get(f"/dashboard/{path}")
    assert response.status_code == 404, response.text
    assert "import" not in response.text


def test_the_page_loads_only_its_own_scripts_and_styles() -> None:
    assets = load_assets()
    page = assets["index.html"].body.decode()
    assert "<script>" not in page  # no inline script: the policy would refuse it anyway
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page
    for module in ("app.js", "api.js", "dom.js", "detail.js", "flow.js", "poller.js", "rates.js"):
        assert module in assets, sorted(assets)


def test_no_script_builds_markup_from_strings() -> None:
    scripts = [asset.body.decode() for name, asset in load_assets().items() if name.endswith(".js")]
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert not any(forbidden in script for script in scripts), forbidden


@pytest.mark.parametrize("status", [status.value for status in JobStatus])
def test_every_status_has_its_card_filter_and_badge(status: str) -> None:
    assets = {name: asset.body.decode() for name, asset in load_assets().items()}
    statuses_line = next(line for line in assets["dom.js"].splitlines() if "STATUSES =" in line)
    assert f'"{status}"' in statuses_line
    assert f'<option value="{status}">{status}</option>' in assets["index.html"]
    assert (
        f".count.status-{status} {{ border-left-color: var(--{status}); }}" in assets["style.css"]
    )
    assert f".status-{status}.badge" in assets["style.css"]
