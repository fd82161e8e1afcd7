"""The OpenAPI document, finished after FastAPI made it: 400s instead of 422s, and the
examples as written (FastAPI drops every null from the document, examples included)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

JSON = "application/json"
Document = dict[str, Any]


def finish_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` give the finished document (built once, on first use)."""
    generate = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            app.openapi_schema = _finished(generate(), app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _finished(document: Document, app: FastAPI) -> Document:
    _drop_422s(document)
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods or ():
                _restore_examples(document["paths"][route.path_format][method.lower()], route)
    return document


def _drop_422s(document: Document) -> None:
    """FastAPI documents a 422 on every route that validates input; this API answers 400
    (documented with each route), so the 422s and their schemas leave the document."""
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    for name in ("HTTPValidationError", "ValidationError"):
        document.get("components", {}).get("schemas", {}).pop(name, None)


def _restore_examples(operation: Document, route: APIRoute) -> None:
    for code, response in route.responses.items():
        example = response.get("content", {}).get(JSON, {}).get("example")
        if example is not None:
            operation["responses"][str(code)]["content"][JSON]["example"] = example
    body_examples = _body_examples(route)
    if body_examples:
        operation["requestBody"]["content"][JSON]["examples"] = body_examples


def _body_examples(route: APIRoute) -> Any:
    """The ``Body(openapi_examples=...)`` of the route's body, if any."""
    if route.body_field is None:
        return None
    return getattr(route.body_field.field_info, "openapi_examples", None)
