"""The API edge: every error becomes an RFC 9457 ``application/problem+json`` response, in this one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.errors import PROBLEM_BASE, ImiError, InfrastructureFailure

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("imi.problems")

_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    **extra: Any,  # noqa: ANN401
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if k not in body})
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _from_imi(request: Request, exc: ImiError) -> JSONResponse:
    if isinstance(exc, InfrastructureFailure):
        log.warning("infrastructure failure on %s: %s", request.url.path, exc.detail)
    return problem_response(exc.status, exc.slug, exc.title, exc.detail, request.url.path, **exc.extra)


def _from_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()[:20]
    ]
    extra: dict[str, Any] = {"errors": errors}
    if request.url.path.startswith("/oid4vci/"):
        extra["error"] = "invalid_request"  # OAuth clients look for this (RFC 6749 section 5.2)
    return problem_response(
        422,
        "request-invalid",
        "Request does not match the schema",
        "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5]),
        request.url.path,
        **extra,
    )


def _from_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    slug, title = _HTTP_SLUGS.get(exc.status_code, (f"http-{exc.status_code}", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(exc.status_code, slug, title, detail, request.url.path)


def _from_bad_data(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value (a NUL character in text, a number out of range): the input is bad, the
    # database is fine. Not an outage, so not a 503.
    del exc
    return problem_response(
        400,
        "malformed",
        "Malformed input",
        "The request contains a value that cannot be stored.",
        request.url.path,
    )


def _from_database(request: Request, exc: Exception) -> JSONResponse:
    orig = getattr(exc, "orig", None)
    log.warning(
        "database failure on %s: %s: %s",
        request.url.path,
        type(exc).__name__,
        type(orig).__name__ if orig else "",
        exc_info=exc,
    )
    return problem_response(
        503,
        "database-unavailable",
        "Service unavailable",
        "The database is not reachable; retry shortly.",
        request.url.path,
    )


def _from_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem_response(
        500, "internal", "Internal error", "An unexpected error occurred.", request.url.path
    )


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413: a declared Content-Length at once, a chunked body as
    soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            response = problem_response(
                413,
                "too-large",
                "Payload too large",
                f"Request bodies are limited to {self.max_bytes} bytes.",
                scope.get("path"),
            )
            await response(scope, receive, send)
            return
        # Read the (bounded) body first, so a chunked upload over the limit is refused before anything parses it.
        chunks: list[bytes] = []
        total = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            more = bool(message.get("more_body", False))
            if total > self.max_bytes:
                response = problem_response(
                    413,
                    "too-large",
                    "Payload too large",
                    f"Request bodies are limited to {self.max_bytes} bytes.",
                    scope.get("path"),
                )
                await response(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def install(app: FastAPI, *, max_body_bytes: int) -> None:
    """Map every exception type to problem+json on ``app``."""
    app.add_exception_handler(ImiError, _from_imi)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _from_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _from_http)  # type: ignore[arg-type]
    app.add_exception_handler(DataError, _from_bad_data)
    app.add_exception_handler(OperationalError, _from_database)
    app.add_exception_handler(DBAPIError, _from_database)
    app.add_exception_handler(Exception, _from_unexpected)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
