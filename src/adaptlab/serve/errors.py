"""Every error the server answers is JSON ``{"error": {"field": "items[3].text", "message": "..."}}``.

Bad input is a 4xx naming the field; a bug is a generic 500 whose details go to the server log only (never
a traceback in a response). The body-size limit is enforced before FastAPI reads the body, on the declared
Content-Length and on the bytes actually received (a chunked body declares none).
"""

from __future__ import annotations

import json
import logging
import sys

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adaptlab.serve.schemas import SHAPE_TAGS

log = logging.getLogger("adaptlab.serve")


class ApiError(Exception):
    """A request the server refuses: HTTP ``status``, the offending ``field`` path (None: the whole request)."""

    def __init__(self, status: int, field: str | None, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def error_body(field: str | None, message: str) -> dict:
    return {"error": {"field": field, "message": message}}


def field_path(location: tuple | list) -> str | None:
    """Pydantic's error location as the client wrote it: ``("body", "items", 3, "text")`` -> ``items[3].text``."""
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:]
    if parts and parts[0] in SHAPE_TAGS:
        parts = parts[1:]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or None


# pydantic's messages, reworded for clients who never saw the Python models
MESSAGES = {
    "missing": "this field is required",
    "extra_forbidden": "unknown field (not part of the request format)",
    "finite_number": "must be a finite number (not NaN or Infinity)",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
}


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"type": "", "loc": ("body",), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        location = first.get("loc", ())
        at = f" at character {location[1]}" if len(location) > 1 and isinstance(location[1], int) else ""
        return JSONResponse(error_body(None, f"malformed JSON{at}: {detail}".rstrip(": ")), status_code=400)
    content_type = request.headers.get("content-type")
    if content_type and "json" not in content_type.lower():  # FastAPI parses only JSON bodies as JSON
        return JSONResponse(error_body(None, f"the body must be JSON (Content-Type: application/json), not "
                                             f"{content_type}"), status_code=415)
    field = field_path(first.get("loc", ()))
    if first.get("type") == "missing" and field is None:
        return JSONResponse(error_body(None, "the request has no body: send a JSON object"), status_code=400)
    message = MESSAGES.get(first.get("type"), first.get("msg", "invalid value"))
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''} in this request)"
    return JSONResponse(error_body(field, message), status_code=422)


def _unparsable_json(cause: BaseException | None) -> str | None:
    """Why Python's JSON reader gave up on a body it could tokenise (FastAPI's own message says only "There was
    an error parsing the body"): nesting past the recursion limit, or an integer past Python's digit limit."""
    if isinstance(cause, RecursionError):
        return "malformed JSON: nested too deeply"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return f"malformed JSON: a number has more than {sys.get_int_max_str_digits():,} digits"
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.field, exc.message), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(None, _unparsable_json(exc.__cause__) or str(exc.detail)),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # the ASGI server logs the traceback itself (Starlette re-raises after answering): one line here
        log.error("unexpected %s answering %s %s", type(exc).__name__, request.method, request.url.path)
        return JSONResponse(error_body(None, "internal server error (details are in the server log)"),
                            status_code=500)


DRAIN_FACTOR = 16  # past this much, an oversized upload is cut off unread (the client may then see a reset)


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 before the app parses any of it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._drain(receive)
            return await self._too_large(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive)
                return await self._too_large(send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the client to disconnect, as the app expects

        return await self.app(scope, replay, send)

    async def _drain(self, receive) -> None:
        """Read and drop the rest of an oversized body (up to DRAIN_FACTOR x the limit) before answering: closing a
        connection with unread bytes makes the kernel send a reset, and the client then loses the 413 itself."""
        budget = DRAIN_FACTOR * self.max_bytes
        while budget > 0:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
            budget -= len(message.get("body", b""))

    async def _too_large(self, send) -> None:
        payload = json.dumps(error_body(None, f"request body too large: the limit is {self.max_bytes:,} bytes"))
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload.encode()})
