"""Hostile input over the whole OpenAPI document, with schemathesis against the ASGI app.

Every operation gets ``MAX_EXAMPLES`` generated requests (valid and invalid, derandomized so CI is repeatable):
none may answer 5xx, and every answer must match what the document declares for its status and media type,
errors included (``kernel.openapi`` declares them as RFC 9457 problems). Requests carry an admin token (the
``/wallet/me`` routes a citizen's session instead), so generated input reaches the code behind authorization.
The app's own HTTP clients (verifier, wallet) are pointed at the app itself, as the other tests do.
Then a few hand-written hostile requests that generated data rarely hits.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import BaseSchema
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import response_schema_conformance

from imi.app import create_app
from kernel import openapi, ratelimit
from kernel.accounts import Role, create_token
from kernel.settings import Settings
from tests.system.cluster import FULL, PROBLEM_JSON, problem_type
from tests.verifier.verifier_fixtures import fresh_verifier
from tests.wallet.soft_authenticator import SoftAuthenticator
from tests.wallet.wallet_fixtures import new_offer
from verifier.fetch import CachingFetcher, DidWebResolver, HttpFetcher

MAX_EXAMPLES = 100 if FULL else 15


class Api:
    def __init__(self, app: FastAPI, client: TestClient) -> None:
        self.app = app
        self.client = client
        self.admin = {"Authorization": f"Bearer {create_token(app.state.engine, role=Role.ADMIN, name='st')}"}
        self.citizen = self._enrol()

    def _enrol(self) -> dict[str, str]:
        officer = {
            "Authorization": f"Bearer {create_token(self.app.state.engine, role=Role.OFFICER, name='st')}"
        }
        offer = new_offer(self.client, officer)
        start = self.client.post(
            "/wallet/enrol/start", json={"offer": offer["credential_offer_uri"], "pin": offer["tx_code"]}
        )
        assert start.status_code == 200, start.text
        attestation = SoftAuthenticator("testserver", "http://testserver").create(start.json()["publicKey"])
        finish = self.client.post(
            "/wallet/enrol/finish",
            json={"ceremony_id": start.json()["ceremony_id"], "credential": attestation},
        )
        assert finish.status_code == 200, finish.text
        self.client.cookies.clear()
        return {"Authorization": f"Bearer {finish.json()['session']}"}

    def headers_for(self, method: str, path: str) -> dict[str, str] | None:
        if path.startswith("/wallet/me"):
            # erasing the one citizen would leave every later case at 401: that route gets generated input only
            return None if (method, path) == ("DELETE", "/wallet/me") else self.citizen
        if path.startswith("/wallet"):
            return None
        return self.admin


@pytest.fixture(scope="module")
def api(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    app = create_app(
        Settings(
            data_dir=tmp_path_factory.mktemp("st"),
            database_url=module_database_url,
            public_url="http://testserver",
            log_batch_interval=0.05,
        )
    )
    openapi.install(app)  # idempotent: stays correct once imi/app.py wires it
    ratelimit.install(app)
    with TestClient(app) as client:
        fresh_verifier(app, client)
        app.state.wallet.http = client
        app.state.wallet.resolver = DidWebResolver(CachingFetcher(HttpFetcher(client)))
        yield Api(app, client)
    # schemathesis starts the app's lifespan once and keeps it for the whole process: stop it (and its
    # sequencer loop) before this module's database goes away
    shutdown_lifespans()
    app.state.engine.dispose()


def _load_schema() -> BaseSchema:
    """The document, read at collection time from a throwaway app (schemathesis' lazy ``from_fixture`` loader
    does not work with pytest 9.2, which dropped ``Node._nodeid``); the requests go to the ``api`` app.

    ``from_dict`` rather than ``from_asgi``: since schemathesis 4.3x, ``from_asgi`` starts the app's lifespan (its
    background workers) and keeps it running for the whole process, writing into a directory this function
    has already removed."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp), public_url="http://testserver"), run_sequencer=False)
        openapi.install(app)
        try:
            return schemathesis.openapi.from_dict(app.openapi())
        finally:
            app.state.engine.dispose()


schema = _load_schema()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_every_answer_as_documented(case: Any, api: Api) -> None:
    case.call_and_validate(
        app=api.app,
        headers=api.headers_for(case.method.upper(), case.path),
        checks=[not_a_server_error, response_schema_conformance],
    )


# ---------------------------------------------------------------------------------- the document itself


def test_every_operation_documents_its_errors_as_problems(api: Api) -> None:
    document = api.app.openapi()
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
    ids = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            ids.append(op["operationId"])
            for status in ("4XX", "5XX"):
                content = op["responses"][status]["content"]
                assert list(content) == [PROBLEM_JSON], (method, path, status)
            if "422" in op["responses"]:
                assert PROBLEM_JSON in op["responses"]["422"]["content"], (method, path)
    assert len(ids) == len(set(ids)), "duplicate operationId"
    assert "HTTPValidationError" not in document["components"]["schemas"]


# ------------------------------------------------------------------ hand-written hostile requests (findings)


def _assert_client_error(resp: Any) -> None:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)


# FINDING tile-unicode-digit (fixed): '²'.isdigit() but int('²') raised ValueError -> 500
@pytest.mark.parametrize("level", ["²", "①", "٣", "1٣"])
def test_tile_level_with_unicode_digits_is_refused_as_malformed(api: Api, level: str) -> None:
    resp = api.client.get(f"/log/tile/{level}/000")
    _assert_client_error(resp)
    assert problem_type(resp) == "tile-path-invalid"


def test_tile_width_with_a_superscript_digit_is_refused_as_malformed(api: Api) -> None:
    _assert_client_error(api.client.get("/log/tile/0/000.p/²"))


NUL_REQUESTS = [
    ("get", "/issuer/status/%00", {}),
    ("get", "/verifier/requests/%00", {}),
    ("get", "/wallet/p/%00", {}),
    ("post", "/wallet/login/finish", {"json": {"ceremony_id": "\x00", "credential": {}}}),
]


# FINDING nul-is-503 (fixed): PostgreSQL refuses NUL in text (DataError); now a 400, not an outage
@pytest.mark.parametrize(("method", "path", "kwargs"), NUL_REQUESTS)
def test_a_nul_character_in_input_is_a_client_error_not_an_outage(
    api: Api, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    _assert_client_error(getattr(api.client, method)(path, **kwargs))


# FINDING wallet-offer-fetch (fixed): unknown issuers are refused before any fetch; network errors are 503
@pytest.mark.parametrize(
    "offer",
    [
        "openid-credential-offer://?credential_offer_uri=http://127.0.0.1:9/offer",
        'openid-credential-offer://?credential_offer={"credential_issuer":"http://127.0.0.1:9",'
        '"credential_configuration_ids":["x"],"grants":{"urn:ietf:params:oauth:grant-type:pre-authorized_code":'
        '{"pre-authorized_code":"c"}}}',
    ],
)
def test_an_offer_naming_an_unreachable_server_is_not_a_500(offer: str, tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, public_url="http://testserver"), run_sequencer=False)
    try:
        resp = TestClient(app, raise_server_exceptions=False).post(
            "/wallet/enrol/start", json={"offer": offer, "pin": "123456"}
        )
        assert resp.status_code != 500, resp.text
    finally:
        app.state.engine.dispose()
