"""What every response model shares: refusing keys it does not declare (so a view and its model
cannot drift apart unnoticed), examples built from the fields' own, and the one page shape."""

from contextlib import suppress
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from starlette.responses import JSONResponse


def example_of(model: type[BaseModel]) -> dict[str, Any]:
    """The model's example: each field's first example, under the name the JSON uses."""
    return {
        field.alias or name: _first_example(model, name, field)
        for name, field in model.model_fields.items()
    }


def _first_example(model: type[BaseModel], name: str, field: FieldInfo) -> Any:
    if not field.examples:
        raise TypeError(f"{model.__name__}.{name} has no example")
    return field.examples[0]


def _page_examples(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A parametrized page's ``items`` example is a list holding one example item."""
    args = getattr(model, "__pydantic_generic_metadata__", {}).get("args", ())
    if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        # An item without examples gets none here: the document's check names its fields.
        with suppress(TypeError):
            schema["properties"]["items"]["examples"] = [[example_of(args[0])]]


class ApiModel(BaseModel):
    """A response body (or part of one). Built from a view's dict: keys it does not declare are
    refused, so every key a client receives is documented."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Item = TypeVar("Item", bound=BaseModel)


class Page(ApiModel, Generic[Item]):
    """Every list the API answers: a page of items and the cursor to the next one."""

    model_config = ConfigDict(json_schema_extra=_page_examples)

    items: list[Item] = Field(
        description="The items of this page, in the list's order (oldest first unless stated).",
        examples=[[]],
    )
    next_cursor: str | None = Field(
        description="Opaque: send it as `cursor` for the next page. `null` on the last page, "
        "and always `null` for lists that are one bounded page.",
        examples=[None, "WyIyMDI2LTExLTAzVDA5OjE1OjAwWiIsInJ1bl8wMUpDM1EiXQ=="],
    )


def json_response(body: BaseModel, status_code: int) -> JSONResponse:
    """A body answered with another status than the route's own, and so another model (which
    the route documents in its ``responses``): serialized as FastAPI would, keys as set."""
    return JSONResponse(
        body.model_dump(mode="json", by_alias=True, exclude_unset=True), status_code
    )
