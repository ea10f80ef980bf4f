"""The served OpenAPI document types every answer: each 2xx JSON response is a component (a
model, or a page of them), and every property of every component an answer reaches has a
description and an example. A route added without a model, or a model field without them, fails
here."""

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from api.app import create_app
from api.models import ApiModel, Page, example_of
from config import Settings
from tests.serving import served

REF = "#/components/schemas/"


@pytest.fixture(scope="module")
async def document(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    """``/openapi.json`` as the app serves it over HTTP (no database or Temporal needed)."""
    directory = tmp_path_factory.mktemp("openapi")
    settings = _settings(directory)
    async with (
        served(create_app(settings), settings) as base,
        httpx.AsyncClient(base_url=base) as http,
    ):
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    yield response.json()


def _settings(directory: Any) -> Settings:
    return Settings(
        database_url=f"sqlite:///{directory / 'tollgate.db'}", admin_token=secrets.token_urlsafe(24)
    )


def json_answers(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each 2xx JSON response's schema, labelled ``METHOD path status``."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                for media_type, content in (response.get("content") or {}).items():
                    if media_type == "application/json" or media_type.endswith("+json"):
                        yield f"{method.upper()} {path} {status}", content.get("schema", {})


def untyped_answers(document: dict[str, Any]) -> list[str]:
    return [label for label, schema in json_answers(document) if not _is_ref(schema)]


def undocumented_properties(document: dict[str, Any]) -> list[str]:
    """``Component.property: what is missing`` for every component a 2xx answer reaches."""
    components = document.get("components", {}).get("schemas", {})
    missing = []
    for name in sorted(_reached(document, components)):
        for prop, schema in components[name].get("properties", {}).items():
            lacks = [
                what
                for what, present in (
                    ("description", bool(schema.get("description"))),
                    ("example", "examples" in schema or "example" in schema),
                )
                if not present
            ]
            if lacks:
                missing.append(f"{name}.{prop}: no {' and no '.join(lacks)}")
    return missing


def _is_ref(schema: dict[str, Any]) -> bool:
    return set(schema) == {"$ref"} and schema["$ref"].startswith(REF)


def _reached(document: dict[str, Any], components: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = [schema for _, schema in json_answers(document)]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF) and ref[len(REF) :] not in seen:
                seen.add(ref[len(REF) :])
                todo.append(components[ref[len(REF) :]])
            todo.extend(v for k, v in node.items() if k not in ("examples", "example"))
        elif isinstance(node, list):
            todo.extend(node)
    return seen


def test_every_json_answer_of_every_operation_is_a_named_model(document: dict[str, Any]):
    assert list(json_answers(document)), "the document lists no JSON answers at all"
    assert untyped_answers(document) == []


def test_every_field_of_every_answer_has_a_description_and_an_example(document: dict[str, Any]):
    assert undocumented_properties(document) == []


def test_every_list_answers_in_pages_of_items_and_a_cursor(document: dict[str, Any]):
    components = document["components"]["schemas"]
    for label, schema in json_answers(document):
        if not label.startswith("GET "):
            continue
        model = components[schema["$ref"][len(REF) :]]
        arrays = [p for p, s in model.get("properties", {}).items() if s.get("type") == "array"]
        if arrays == ["items"]:
            assert set(model["properties"]) == {"items", "next_cursor"}, label
            assert model["properties"]["next_cursor"]["anyOf"] == [
                {"type": "string"},
                {"type": "null"},
            ], label


def test_a_page_shows_an_example_item(document: dict[str, Any]):
    customers = document["components"]["schemas"]["Page_Customer_"]["properties"]["items"]
    assert customers["examples"][0][0]["id"].startswith("cus_")


class _Undescribed(BaseModel):
    name: str


class _Half(ApiModel):
    name: str


def _with_extra_routes(tmp_path: Any) -> FastAPI:
    app = create_app(_settings(tmp_path))

    @app.get("/v1/untyped")
    def untyped() -> dict[str, Any]:
        return {}

    @app.get("/v1/undescribed")
    def undescribed() -> Page[_Half]:
        return Page[_Half](items=[], next_cursor=None)

    @app.get("/v1/bare")
    def bare() -> _Undescribed:
        return _Undescribed(name="x")

    app.openapi_schema = None
    return app


def test_a_route_added_without_a_model_or_field_docs_is_caught(tmp_path: Any):
    document = _with_extra_routes(tmp_path).openapi()
    assert untyped_answers(document) == ["GET /v1/untyped 200"]
    assert undocumented_properties(document) == [
        "_Half.name: no description and no example",
        "_Undescribed.name: no description and no example",
    ]


def _response_models() -> list[type[ApiModel]]:
    found, todo = [], list(ApiModel.__subclasses__())
    while todo:
        model = todo.pop()
        todo += model.__subclasses__()
        if model.__module__.startswith("api.models") and "[" not in model.__name__:
            found.append(model)
    return found


@pytest.mark.parametrize("model", _response_models(), ids=lambda m: m.__name__)
def test_each_models_example_is_a_valid_body_of_it(model: type[ApiModel]):
    example = example_of(model)
    assert model.model_validate(example).model_dump(by_alias=True, exclude_unset=True) == example
