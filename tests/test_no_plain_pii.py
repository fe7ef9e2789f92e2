"""After the whole story (check, issuance, wallet enrolment, QR and OpenID4VP verifications), neither the
database nor a dump of it holds a plain name, ID number or address: only sealed blobs, hashes and masks."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.issuer.test_keys_and_audit import _everything_in_the_database, _holds
from tests.verifier.verifier_fixtures import fresh_verifier, http_verifier
from tests.wallet.wallet_fixtures import Citizen, enrol, wallet_http

__all__ = ["enrol", "http_verifier", "wallet_http"]  # fixtures used here

PERSONAL = {"ID number": "11010519491231002X", "name": "王小明", "address": "北京市东城区景山前街4号"}
pytestmark = pytest.mark.usefixtures("http_verifier")


@pytest.fixture
def story(client: TestClient, app: FastAPI, enrol: Callable[..., Citizen]) -> Citizen:
    citizen = enrol()
    for form in ("compact", "reference"):
        fresh_verifier(app, client)
        qr = client.post(
            f"/wallet/me/credentials/{citizen.credential_id}/qr",
            headers=citizen.session,
            json={"claims": ["name", "idNumber", "address"], "form": form},
        ).json()
        assert client.post("/verifier/scan", json={"qr": qr["text"]}).status_code == 200
    req = client.post("/verifier/requests", json={"claims": ["name", "address"]}).json()
    answer = client.post(
        "/wallet/me/vp/answer",
        headers=citizen.session,
        json={"qr": req["qr_text"], "credential_id": citizen.credential_id, "claims": ["name", "address"]},
    )
    assert answer.status_code == 200, answer.text
    assert client.get(f"/verifier/requests/{req['id']}").json()["result"]["disclosed"]["name"] == "王小明"
    return citizen


def test_no_plain_personal_data_in_any_table(app: FastAPI, story: Citizen) -> None:
    cells = 0
    for table, column, value in _everything_in_the_database(app):
        cells += 1
        for label, needle in PERSONAL.items():
            assert not _holds(value, needle), f"{label} in plain text in {table}.{column}"
    assert cells > 100


def test_no_plain_personal_data_in_the_file_or_the_dump(
    app: FastAPI, story: Citizen, database_url: str
) -> None:
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        data = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
        assert b"wallet_vault_item" in data
    else:
        schema = database_url.rsplit("search_path%3D", 1)[-1]
        url = os.environ["IMI_TEST_DATABASE_URL"]
        data = subprocess.run(
            ["pg_dump", "--no-owner", "-n", schema, url], check=True, capture_output=True
        ).stdout
        assert b"wallet_vault_item" in data
    for label, needle in PERSONAL.items():
        assert needle.encode() not in data, label
