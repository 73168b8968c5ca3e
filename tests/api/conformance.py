"""Every response the API tests receive is checked against the OpenAPI document the server publishes."""

import re
from typing import Any

from jsonschema import Draft202012Validator
from yarl import URL

from api.openapi import openapi_document
from api.routes import ROUTES


class OpenApiConformance:
    def __init__(self, document: dict[str, Any]):
        self.components = document["components"]
        self.operations = []
        for path, methods in document["paths"].items():
            pattern = re.compile("^" + re.sub(r"{\w+}", "[^/]+", path) + "$")
            for method, operation in methods.items():
                self.operations.append((method.upper(), pattern, path, operation))

    def operation(self, method: str, path: str):
        for op_method, pattern, template, operation in self.operations:
            if op_method == method and pattern.match(path):
                return template, operation
        return None, None

    def problems(self, method: str, path: str, status: int, content_type: str, body: Any) -> list[str]:
        """Why this response does not match the document; empty when it does."""
        template, operation = self.operation(method, path)
        if operation is None:
            if status < 400:
                return [f"{method} {path} answered {status} but the document has no such operation"]
            responses = {"default": {"content": {"application/json": {"schema": {"$ref": ERROR}}}}}
        else:
            responses = operation["responses"]
        response = responses.get(str(status))
        if response is None:
            if status < 400:
                return [f"{method} {template} answered {status}, which the document does not list"]
            response = responses["default"]
        content = response.get("content")
        if content is None:
            return (
                []
                if status == 204 and body is None
                else [f"{method} {template} {status}: body not documented"]
            )
        if content_type != "application/json":
            return [f"{method} {template} {status}: content type {content_type}"]
        schema = {**content["application/json"]["schema"], "components": self.components}
        validator = Draft202012Validator(schema)
        return [
            f"{method} {template} {status}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(body)
        ]


ERROR = "#/components/schemas/Error"
CONFORMANCE = OpenApiConformance(openapi_document(ROUTES))


def documented(path: str) -> bool:
    """The public API: not the dashboard's pages nor its page-data endpoints (`.../dashboard/...`: rows and
    an event stream), which only the dashboard's own scripts read."""
    return path.startswith("/api/") and "/dashboard/" not in path


def check_every_response(client) -> None:
    """Wrap an aiohttp TestClient so that each response is held against the OpenAPI document."""
    send = client._request

    async def checked(method: str, path, **kwargs):
        response = await send(method, path, **kwargs)
        if not documented(URL(str(path)).path):
            return response  # read by the test itself: it may be an endless event stream
        body = None
        if response.status != 204 and method != "HEAD":
            raw = await response.read()
            body = await response.json() if response.content_type == "application/json" else raw
        problems = CONFORMANCE.problems(
            method, URL(str(path)).path, response.status, response.content_type, body
        )
        assert not problems, problems
        return response

    client._request = checked
