"""The OpenAPI document tells the truth about errors: every one is RFC 9457 ``application/problem+json``.

FastAPI documents only ``422`` and with its own ``HTTPValidationError`` body, while ``kernel.problems`` answers
every failure (400, 401, 403, 404, 409, 413, 422, 429, 503, and 500) as a problem. ``install(app)`` rewrites the
generated document once:

* a ``Problem`` schema in ``components.schemas`` (RFC 9457 section 3.1 members; extensions allowed, such as the
  OAuth ``error`` code, ``checks`` of a refused presentation or ``retry_after``);
* on every operation, ``422`` described as a problem, plus ``4XX`` and ``5XX`` ranges answered by a problem, unless
  the operation declares its own content for them;
* operation ids made unique (a route serving GET and POST would otherwise carry one id twice).

``problem_responses(401, 404, ...)`` builds the same declarations for a route's or router's ``responses=``,
where an operation wants to name its errors one by one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details. `type` is a stable URN `urn:imi:problem:<slug>`.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:imi:problem:<slug>"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "error": {
            "type": "string",
            "description": "OAuth 2.0 / OpenID error code, where a protocol needs one",
        },
    },
    "additionalProperties": True,
}

_DESCRIPTIONS = {
    400: "Malformed input, or a signature, proof or rule that does not hold",
    401: "Authentication required or not valid",
    403: "Authenticated, but not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with the current state (used code, answered request, ...)",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Request does not match the schema",
    429: "Too many requests (see Retry-After)",
    500: "Internal error",
    503: "A dependency (database, remote party) is unavailable; retry later (see Retry-After)",
    "4XX": "Client error (RFC 9457 problem)",
    "5XX": "Server or dependency failure (RFC 9457 problem)",
}


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}


def problem_response(status: int | str) -> dict[str, Any]:
    """One OpenAPI response object answered by a problem."""
    return {"description": _DESCRIPTIONS.get(status, "Problem"), "content": _problem_content()}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """For ``responses=`` on a route or router: ``responses=problem_responses(401, 403, 404)``."""
    return {status: problem_response(status) for status in statuses}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an OpenAPI document in place (see the module docs); returns it."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    operations = [
        (method, op)
        for item in schema.get("paths", {}).values()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]
    for _, op in operations:
        responses: dict[str, Any] = op["responses"]
        if "422" in responses:
            responses["422"] = problem_response(422)
        for key in ("4XX", "5XX"):
            responses.setdefault(key, problem_response(key))
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 bodies, replaced above
        definition = components.pop(name, None)
        if definition is not None and f"#/components/schemas/{name}" in str(schema):
            components[name] = definition  # still referenced somewhere: keep it
    counts = Counter(op.get("operationId") for _, op in operations if op.get("operationId"))
    for method, op in operations:
        op_id = op.get("operationId")
        if op_id and counts[op_id] > 1 and not op_id.endswith(f"_{method}"):
            op["operationId"] = f"{op_id}_{method}"
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json`` and ``/docs``) document problem+json errors. Idempotent."""
    if getattr(app.state, "openapi_problems_installed", False):
        return
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.openapi_schema = None
    app.state.openapi_problems_installed = True
