"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""

import re
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}
REF = "#/components/schemas/{model}"
WS = "/api/workspaces/{workspaceId}"


def _schema(target: Any, mode: str, components: dict[str, Any]) -> dict[str, Any]:
    adapter = target if isinstance(target, TypeAdapter) else TypeAdapter(target)
    schema = adapter.json_schema(
        by_alias=True, mode=mode, ref_template=REF, schema_generator=GenerateJsonSchema
    )
    components.update(schema.pop("$defs", {}))
    if isinstance(target, type) and issubclass(target, BaseModel):
        components[target.__name__] = schema
        return {"$ref": REF.format(model=target.__name__)}
    return schema


@cache
def _cached(routes: tuple) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": re.sub(
                r"[^A-Za-z]+", "_", f"{route.method.lower()}{route.path.removeprefix(WS)}"
            ).strip("_"),
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", route.path)
            ],
            "responses": {},
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(route.body, "validation", components)}},
            }
        for status in route.statuses:
            response: dict[str, Any] = {"description": "OK" if status < 300 else "No content"}
            if route.response is not None and status != 204:
                schema = _schema(route.response, "serialization", components)
                if route.list_of:
                    schema = {
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": schema},
                            "nextCursor": {"type": ["string", "null"]},
                        },
                    }
                response["content"] = {"application/json": {"schema": schema}}
            operation["responses"][str(status)] = response
        operation["responses"]["default"] = {
            "description": "Error",
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "syncjobs", "version": "0.1.0"},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def openapi_document(routes: list) -> dict[str, Any]:
    return _cached(tuple(routes))
