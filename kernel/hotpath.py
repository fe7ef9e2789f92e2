"""Hot routes: the few endpoints that carry the load, served without FastAPI's per-request machinery.

FastAPI (0.16x) spends about 150 microseconds of one core on every request before the endpoint runs: matching
the path against every included router in turn, solving the dependency graph, validating the body through its
generic layer. For a kiosk scan that is a third of the whole verification. A hot route is a plain Starlette
``Route`` placed in front of the app's routes, so it is matched first and called directly; everything around
it stays: the ASGI middleware (body limit, error mapping), the app's exception handlers (``ImiError`` and
``RequestValidationError`` become the same problem+json as anywhere else), the state on ``request.app``.

The FastAPI route of the same path and method stays declared, with the same body model and the same handler
behind it, so that the OpenAPI description is unchanged; it is simply matched second. ``tests`` check that the
two answer the same.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

M = TypeVar("M", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]


async def json_body(request: Request, model: type[M]) -> M:
    """The request body validated as ``model``, read as FastAPI reads a JSON body (strict content type: only
    ``application/json`` and ``application/*+json`` are parsed) and refused with the same errors."""
    raw = await request.body()
    if not raw:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    data: Any = raw  # anything but JSON is validated as bytes, and so refused, as FastAPI does
    if _is_json(request.headers.get("content-type")):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            error = {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
            }
            raise RequestValidationError([error], body=raw) from None
        except ValueError:  # (undecodable bytes)
            raise HTTPException(status_code=400, detail="There was an error parsing the body") from None
    try:
        return model.model_validate(data, from_attributes=True)  # (FastAPI validates bodies so)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=raw) from None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def query(request: Request, model: type[M]) -> M:
    """The query string validated as ``model`` (last value of a repeated name wins, unknown names are ignored,
    as FastAPI does); errors as FastAPI reports them (``loc`` starting at "query")."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = [{**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def install(app: FastAPI, routes: Sequence[tuple[str, str, Endpoint]]) -> None:
    """Put ``(method, path, endpoint)`` routes in front of everything else ``app`` routes."""
    for method, path, endpoint in reversed(routes):
        route = Route(path, endpoint, methods=[method], include_in_schema=False)
        # Starlette adds HEAD to a GET route; FastAPI's answers HEAD with 405, and a HEAD must not release data.
        route.methods = {method}
        app.router.routes.insert(0, route)
