"""``POST /verifier/history``: a holder reads what this verifier recorded about their credential, nobody else."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from kernel.sdjwt import present
from tests.verifier.test_attacks import bind, parts, refused
from tests.verifier.verifier_fixtures import Holder
from verifier.service import HISTORY_AUDIENCE

pytestmark = pytest.mark.usefixtures("http_verifier")


def ask(client: TestClient, presentation: str) -> dict[str, object]:
    resp = client.post("/verifier/history", json={"presentation": presentation})
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body: dict[str, object] = resp.json()
    return body


def test_the_holder_sees_every_scan_of_their_credential_and_only_theirs(
    client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    alice, bob = make_holder(), make_holder()
    shown = alice.present(["name", "birthDate"])
    assert (
        client.post("/verifier/scan", json={"qr": shown, "verifier_id": "district-3/kiosk-7"}).status_code
        == 200
    )
    assert (
        client.post("/verifier/scan", json={"qr": shown, "verifier_id": "district-3/kiosk-9"}).status_code
        == 400
    )
    assert client.post("/verifier/scan", json={"qr": bob.present(["name"])}).status_code == 200

    mine = ask(client, alice.present([], aud=HISTORY_AUDIENCE))
    assert mine["credential_id"] == alice.credential_id
    records = mine["records"]
    assert isinstance(records, list)
    assert [(r["verifier_id"], r["outcome"], r["problem"]) for r in records] == [
        ("district-3/kiosk-9", "refused", "presentation-replayed"),
        ("district-3/kiosk-7", "verified", None),
    ]
    assert records[1]["claims"] == ["birthDate", "name"]
    assert "王小明" not in str(mine)  # claim names only, never values

    theirs = ask(client, bob.present([], aud=HISTORY_AUDIENCE))
    assert theirs["credential_id"] == bob.credential_id
    assert [r["verifier_id"] for r in theirs["records"]] == ["kiosk"]  # type: ignore[attr-defined]


def test_possession_must_be_proven(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    # a presentation meant for a kiosk is not a request for records
    refused(
        client.post("/verifier/history", json={"presentation": holder.present([])}), "kb-audience-mismatch"
    )
    # the credential alone (found, copied) proves nothing
    bare = present(holder.credential, disclose=[], holder_key=None)
    refused(client.post("/verifier/history", json={"presentation": bare}), "kb-missing")
    # signed by another key than the credential's cnf key
    thief = ec.generate_private_key(ec.SECP256R1())
    stolen = bind(parts(holder.credential)[0], [], thief, aud=HISTORY_AUDIENCE)
    refused(client.post("/verifier/history", json={"presentation": stolen}), "kb-signature-invalid")
    refused(client.post("/verifier/history", json={"presentation": "garbage"}), "sd-jwt-malformed")
