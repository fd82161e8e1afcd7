"""The OpenAPI document at /docs: every /api operation shows an example of each answer and of
its request body, and each example is what the route's model reads and writes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from jobqueue.api.app import create_app
from jobqueue.api.schemas import ErrorOut
from jobqueue.config import Settings
from jobqueue.domain.retry import RetryPolicy
from jobqueue.service import JobService
from jobqueue.store.memory import InMemoryJobStore
from tests.unit.doubles import RecordingBroker

JSON = "application/json"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    service = JobService(InMemoryJobStore(), RecordingBroker(), RetryPolicy(3, 10), None)
    return create_app(service, Settings(_env_file=None))


def api_routes(app: FastAPI) -> list[APIRoute]:
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/api")]
    assert len(routes) >= 13
    return routes


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every /api operation in the document."""
    paths = app.openapi()["paths"]
    return [
        (method, path, operation)
        for path, methods in paths.items()
        if path.startswith("/api")
        for method, operation in methods.items()
    ]


def round_trip(kind: Any, example: Any, **dump: Any) -> Any:
    """``example`` read by ``kind`` and written back as the API writes it."""
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    return adapter.dump_python(adapter.validate_python(example), mode="json", by_alias=True, **dump)


def test_every_answer_of_every_operation_has_an_example(app: FastAPI) -> None:
    for method, path, operation in operations(app):
        answers = operation["responses"]
        assert "422" not in answers, (method, path)  # this API answers 400, documented
        assert any(code.startswith("2") for code in answers), (method, path)
        for code, response in answers.items():
            if code == "204":
                assert "content" not in response
                continue
            media = response["content"][JSON]
            assert "example" in media or media.get("examples"), (method, path, code)


def test_every_request_body_has_examples(app: FastAPI) -> None:
    bodies = 0
    for method, path, operation in operations(app):
        if "requestBody" in operation:
            bodies += 1
            examples = operation["requestBody"]["content"][JSON].get("examples")
            assert examples, (method, path)
            assert all("value" in example for example in examples.values()), (method, path)
    assert bodies == 5  # create, batch, PATCH, retry-failed, flows


def documented(app: FastAPI, route: APIRoute) -> dict[str, Any]:
    """The route's operation in the document."""
    assert route.methods is not None
    (method,) = route.methods
    operation: dict[str, Any] = app.openapi()["paths"][route.path_format][method.lower()]
    return operation


def test_each_answer_example_is_what_the_route_writes_nulls_included(app: FastAPI) -> None:
    for route in api_routes(app):
        for code, response in documented(app, route)["responses"].items():
            if code == "204":
                continue
            example = response["content"][JSON]["example"]
            kind = route.response_model if code.startswith("2") else ErrorOut
            assert round_trip(kind, example) == example, (route.path, code)
    create = app.openapi()["paths"]["/api/jobs"]["post"]
    job = create["responses"]["201"]["content"][JSON]["example"]
    assert job["nextRunAt"] is None  # FastAPI alone would drop every null


def test_each_request_example_is_a_body_the_route_accepts(app: FastAPI) -> None:
    for route in api_routes(app):
        if route.body_field is None:
            continue
        examples = documented(app, route)["requestBody"]["content"][JSON]["examples"]
        kind = route.body_field.field_info.annotation
        for name, example in examples.items():
            value = example["value"]
            written = round_trip(kind, value, exclude_unset=True)
            assert written == bullmq_names_read(value), (route.path, name)


def bullmq_names_read(body: Any) -> Any:
    """``body`` with BullMQ's ``name`` and ``data`` (a flow tree's) as the API's own names."""
    if isinstance(body, list):
        return [bullmq_names_read(item) for item in body]
    if not isinstance(body, dict):
        return body
    renamed = {"name": "type", "data": "payload"}
    return {
        renamed.get(key, key): value if key in ("data", "payload") else bullmq_names_read(value)
        for key, value in body.items()
    }
