"""Reading JSON bodies and query parameters into validated models, with field-by-field errors."""

import json
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.errors import BadRequest, UnsupportedMediaType
from api.json_limits import TooDeep, check_json_limits
from api.keys import CLOCK
from models.errors import ValidationFailed

Model = TypeVar("Model", bound=BaseModel)


def field_errors(error: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as {field, message}: the field as a dotted camelCase path."""
    details = []
    for item in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        details.append({"field": field, "message": message})
    return details


def validate(schema: type[Model] | TypeAdapter, data: Any, *, now: datetime | None = None) -> Any:
    """`data` as a model instance; a TypeAdapter stands for a union of models. `now` (the app's clock)
    turns on the checks that depend on the time, such as a schedule firing within ten years."""
    context = {"now": now} if now is not None else None
    try:
        if isinstance(schema, TypeAdapter):
            return schema.validate_python(data, context=context)
        return schema.model_validate(data, context=context)
    except ValidationError as error:
        raise ValidationFailed("The request body does not validate", details=field_errors(error)) from None


async def read_json(request: web.Request, *, required: bool = True) -> Any:
    """The request's JSON body; None for an absent body where one is optional."""
    if not request.body_exists:
        if required:
            raise BadRequest("A JSON body is required")
        return None
    if request.content_type not in ("application/json", "application/merge-patch+json"):
        raise UnsupportedMediaType(details={"contentType": request.content_type})
    raw = await request.read()
    if not raw.strip() and not required:
        return None
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BadRequest("The body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The body is not valid JSON", details={"reason": str(exc)}) from None
    try:
        check_json_limits(data)
    except TooDeep as exc:
        raise BadRequest("The body is nested too deeply", details={"reason": str(exc)}) from None
    return data


async def read_object(request: web.Request) -> dict[str, Any]:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed(
            "The body must be a JSON object", details=[{"field": "", "message": "expected an object"}]
        )
    return data


async def read_model(request: web.Request, schema: type[Model] | TypeAdapter) -> Any:
    return validate(schema, await read_object(request), now=request.app[CLOCK].now())


def to_json(view: type[BaseModel], doc: dict[str, Any]) -> dict[str, Any]:
    return view.model_validate(doc).model_dump(by_alias=True, mode="json")
