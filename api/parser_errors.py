"""aiohttp's own errors (an oversized URL or header, a malformed request line) in the JSON error shape.

aiohttp answers these from its HTTP parser, before the application or any middleware sees the request, as
plain text; it offers no hook for the body. Its server builds each connection's RequestHandler by the
name `aiohttp.web_server.RequestHandler`, so that name is pointed at a subclass whose `handle_error`
answers JSON: every app in the process then answers these in one shape, which is what we want."""

import json
from http import HTTPStatus

from aiohttp import web, web_protocol, web_server

CODES = {400: "bad_request", 413: "payload_too_large", 414: "uri_too_long", 431: "headers_too_large"}


class JsonErrorRequestHandler(web_protocol.RequestHandler):
    def handle_error(self, request, status=500, exc=None, message=None) -> web.StreamResponse:
        # The parent logs and checks that nothing was sent yet; only its text body is replaced.
        plain = super().handle_error(request, status, exc, message)
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        details = {"reason": message} if message and status < 500 else None
        body = {
            "error": {
                "code": CODES.get(status, "internal_error" if status >= 500 else "http_error"),
                "message": reason,
                "details": details,
            }
        }
        response = web.Response(status=plain.status, text=json.dumps(body), content_type="application/json")
        response.force_close()
        return response


def answer_parser_errors_in_json() -> None:
    """Idempotent; called by create_app."""
    web_server.RequestHandler = JsonErrorRequestHandler
