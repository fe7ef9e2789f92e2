"""``POST /verifier/scan`` is a hot route (``kernel.hotpath``): it must answer exactly as its FastAPI route does."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route

from tests.hotpath_helpers import hot_route
from tests.hotpath_helpers import without_hot_route as without_scan_hot_route
from tests.verifier.verifier_fixtures import Holder

pytestmark = pytest.mark.usefixtures("http_verifier")
SCAN = "/verifier/scan"


def without_hot_route(app: FastAPI) -> AbstractContextManager[None]:
    return without_scan_hot_route(app, SCAN)


def both(app: FastAPI, client: TestClient, send: Callable[[], httpx.Response]) -> tuple[Any, Any]:
    hot = send()
    with without_hot_route(app):
        plain = send()
    assert hot.status_code == plain.status_code, (hot.text, plain.text)
    assert hot.headers["content-type"] == plain.headers["content-type"]
    return hot.json(), plain.json()


def test_the_hot_route_is_matched_first(app: FastAPI) -> None:
    hot = hot_route(app, SCAN)
    assert hot.methods == {"POST"}
    routes = app.router.routes
    assert all(isinstance(r, Route) and not isinstance(r, APIRoute) for r in routes[: routes.index(hot)])
    operation = app.openapi()["paths"][SCAN]["post"]  # the FastAPI route still describes it
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ScanIn")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"qr": "garbage"}'),
        ("", b'{"qr": "garbage"}'),
        ("application/x-www-form-urlencoded", b"qr=garbage"),
        ("application/vnd.api+json", b'{"qr": "garbage"}'),
        ("application/json; charset=utf-8", b'{"qr": "garbage"}'),
        ("application/json", b""),
        ("application/json", b"\xff\xfe{"),
    ],
)
def test_content_types_are_read_alike(
    app: FastAPI, client: TestClient, content_type: str, body: bytes
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    hot, plain = both(app, client, lambda: client.post(SCAN, content=body, headers=headers))
    assert hot == plain


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"{}",
        b'{"qr": 5}',
        b'{"qr": "x", "extra": 1}',
        b'{"qr": "' + b"A" * 9000 + b'"}',
        b"[]",
    ],
)
def test_schema_errors_are_the_same_problem(app: FastAPI, client: TestClient, body: bytes) -> None:
    hot, plain = both(
        app, client, lambda: client.post(SCAN, content=body, headers={"Content-Type": "application/json"})
    )
    assert hot["type"] == "urn:imi:problem:request-invalid"
    assert hot == plain


def test_refusals_are_the_same_problem(app: FastAPI, client: TestClient) -> None:
    hot, plain = both(app, client, lambda: client.post(SCAN, json={"qr": "garbage that is no QR"}))
    assert hot["type"].startswith("urn:imi:problem:")
    assert hot == plain


def test_a_verification_answers_the_same(
    app: FastAPI, client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    first, second = holder.present(["name"]), holder.present(["name"])
    hot = client.post(SCAN, json={"qr": first})
    with without_hot_route(app):
        plain = client.post(SCAN, json={"qr": second})
    assert hot.status_code == plain.status_code == 200, (hot.text, plain.text)
    assert hot.json() == plain.json()
    assert hot.json()["disclosed"] == {"name": "王小明"}
