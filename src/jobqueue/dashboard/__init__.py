"""The operator's web page at /dashboard: static files inside the package, served by the API.

The page holds no data: it reads and acts only through the public /api routes, with the key
the operator types in. So its files are served without a key, and the key check (which guards
/api only) stays the one gate in front of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import PurePosixPath

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response

from jobqueue.api.errors import error_response

PATH = "/dashboard"
"""Where the page is served; its files are under ``/dashboard/<name>``."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
"""No inline script or style, nothing from another origin: data the page shows that slipped
past its text-only rendering still could not run."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load, so an upgraded server never runs with an old page's script.
    "Cache-Control": "no-cache",
}

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the page, read once at start."""

    body: bytes
    media_type: str

    def response(self) -> Response:
        """The file with the page's security headers."""
        return Response(self.body, media_type=self.media_type, headers=SECURITY_HEADERS)


def load_assets() -> dict[str, Asset]:
    """Every file of ``static/`` by name: a request can name only one of these, never a path."""
    assets: dict[str, Asset] = {}
    for entry in (files(__name__) / "static").iterdir():
        media_type = MEDIA_TYPES.get(PurePosixPath(entry.name).suffix)
        if entry.is_file() and media_type is not None:
            assets[entry.name] = Asset(entry.read_bytes(), media_type)
    if "index.html" not in assets:
        raise RuntimeError("the dashboard's files are missing from the jobqueue package")
    return assets


def install_dashboard(app: FastAPI) -> None:
    """Serve the page at /dashboard, its files under it, and redirect / there."""
    assets = load_assets()

    async def home() -> Response:
        return RedirectResponse(PATH, status_code=307)

    async def page() -> Response:
        return assets["index.html"].response()

    async def asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            return error_response(404, f"The dashboard has no file named {name!r}")
        return found.response()

    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)
    app.add_api_route(PATH, page, methods=["GET"], include_in_schema=False)
    app.add_api_route(PATH + "/{name}", asset, methods=["GET"], include_in_schema=False)
