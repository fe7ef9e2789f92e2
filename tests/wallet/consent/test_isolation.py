"""Third party A cannot see or use B's consents; citizens see only their own; pseudonyms are pairwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from .conftest import ThirdParty, grant


def test_a_cannot_see_or_use_b_consents(
    client: TestClient, make_third_party: Callable[..., ThirdParty], enrol: Any
) -> None:
    bank, hospital = make_third_party("Example Bank"), make_third_party("City Hospital")
    citizen = enrol()
    cid = bank.request()["id"]
    assert grant(client, citizen.session, cid).status_code == 200
    for method, path in [
        ("GET", f"/consent/consents/{cid}"),
        ("GET", f"/consent/consents/{cid}/data?nonce=abcdefgh1"),
        ("GET", f"/consent/consents/{cid}/receipt"),
        ("GET", f"/consent/consents/{cid}/events"),
        ("POST", f"/consent/consents/{cid}/revoke"),
        ("GET", "/consent/consents/cn_does-not-exist"),
    ]:
        resp = client.request(method, path, headers=hospital.headers)
        assert resp.status_code == 404, path
        assert resp.json()["type"] == "urn:imi:problem:consent-not-found", path
    assert client.get("/consent/consents", headers=hospital.headers).json() == []
    assert [c["id"] for c in client.get("/consent/consents", headers=bank.headers).json()] == [cid]
    assert bank.release(cid).status_code == 200  # untouched by the hospital's attempts
    for path in [f"/consent/consents/{cid}/data?nonce=abcdefgh1", "/consent/consents"]:
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer imic_forged"}).status_code == 401


def test_citizens_see_only_their_own(client: TestClient, bank: ThirdParty, enrol: Any) -> None:
    alice, bob = enrol(), enrol(name="李四", document_number="11010519491231002X")
    cid = bank.request()["id"]
    assert grant(client, alice.session, cid).status_code == 200
    for method, path in [
        ("GET", f"/wallet/me/consents/{cid}"),
        ("POST", f"/wallet/me/consents/{cid}/withdraw"),
        ("POST", f"/wallet/me/consents/{cid}/pause"),
        ("POST", f"/wallet/me/consents/{cid}/refuse"),
        ("GET", f"/wallet/me/consents/{cid}/receipt"),
        ("GET", f"/wallet/me/consents/{cid}/events"),
    ]:
        resp = client.request(method, path, headers=bob.session)
        assert resp.status_code == 404, path
    assert grant(client, bob.session, cid).status_code == 404  # already bound to Alice
    assert client.get("/wallet/me/consents", headers=bob.session).json() == []
    assert client.get(f"/wallet/me/consents/{cid}").status_code == 401
    assert bank.release(cid).status_code == 200


def test_pseudonyms_are_pairwise(
    client: TestClient, make_third_party: Callable[..., ThirdParty], enrol: Any
) -> None:
    bank, hospital = make_third_party("Example Bank"), make_third_party("City Hospital")
    alice, bob = enrol(), enrol()
    subs: dict[tuple[str, str], str] = {}
    for who, citizen in (("alice", alice), ("bob", bob)):
        for party in (bank, hospital):
            for _ in range(2):
                cid = party.request()["id"]
                assert grant(client, citizen.session, cid).status_code == 200
                sub = party.release(cid).json()["sub"]
                assert subs.setdefault((who, party.client_id), sub) == sub  # stable for one pair
    assert len(set(subs.values())) == 4  # different for every (citizen, client) pair
    assert all(len(s) == 22 and "11010519491231002X" not in s for s in subs.values())
