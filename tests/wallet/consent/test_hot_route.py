"""The data release is a hot route (``kernel.hotpath``): it must answer exactly as its FastAPI route does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.hotpath_helpers import hot_route, without_hot_route

from .conftest import ThirdParty, grant

DATA = "/consent/consents/{consent_id}/data"


def both(app: FastAPI, send: Callable[[], httpx.Response]) -> tuple[httpx.Response, httpx.Response]:
    hot = send()
    with without_hot_route(app, DATA):
        plain = send()
    assert hot.status_code == plain.status_code, (hot.text, plain.text)
    assert hot.headers["content-type"] == plain.headers["content-type"]
    return hot, plain


@pytest.fixture
def cid(client: TestClient, bank: ThirdParty, enrol: Any) -> str:
    """A consent the bank asked for and a citizen granted."""
    consent_id: str = bank.request()["id"]
    assert grant(client, enrol().session, consent_id).status_code == 200
    return consent_id


def test_the_release_is_a_hot_route(app: FastAPI) -> None:
    assert hot_route(app, DATA).methods == {"GET"}
    assert "get" in app.openapi()["paths"][DATA]  # still described by the FastAPI route


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?nonce=short",
        "?nonce=" + "n" * 129,
        "?nonce=has%20space1",
        "?nonce=abcdefgh1&claims=" + "x" * 2001,
    ],
)
def test_bad_queries_are_the_same_problem(
    app: FastAPI, client: TestClient, bank: ThirdParty, cid: str, query: str
) -> None:
    hot, plain = both(app, lambda: client.get(f"/consent/consents/{cid}/data{query}", headers=bank.headers))
    assert hot.status_code == 422
    assert hot.json() == plain.json()


def test_head_releases_nothing(app: FastAPI, client: TestClient, bank: ThirdParty, cid: str) -> None:
    path = f"/consent/consents/{cid}/data?nonce=abcdefgh1"
    hot, _ = both(app, lambda: client.head(path, headers=bank.headers))
    assert hot.status_code == 405
    events = client.get(f"/consent/consents/{cid}/events", headers=bank.headers).json()
    kinds = [e["body"]["kind"] for e in events]
    assert "given" in kinds
    assert "released" not in kinds
    assert bank.release(cid).status_code == 200  # and the GET still releases


def test_refusals_are_the_same_problem(app: FastAPI, client: TestClient, bank: ThirdParty) -> None:
    def release_of_unknown(headers: dict[str, str]) -> Callable[[], httpx.Response]:
        return lambda: client.get("/consent/consents/cn_nope/data?nonce=abcdefgh1", headers=headers)

    for headers in ({}, bank.headers):
        hot, plain = both(app, release_of_unknown(headers))
        assert hot.status_code in (401, 404)
        assert hot.json() == plain.json()


def test_a_release_answers_the_same(app: FastAPI, bank: ThirdParty, cid: str) -> None:
    hot, plain = both(app, lambda: bank.release(cid))
    assert hot.status_code == 200, hot.text
    assert hot.headers["cache-control"] == plain.headers["cache-control"] == "no-store"
    one, other = hot.json(), plain.json()
    assert one.keys() == other.keys()
    assert one["items"] == other["items"]
    assert one["items"]
    assert (one["sub"], one["consent_id"], one["version"]) == (
        other["sub"],
        other["consent_id"],
        other["version"],
    )
