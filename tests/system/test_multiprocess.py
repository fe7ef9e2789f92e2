"""Three ``imi serve`` processes on one database behave as one service (design.md "Storage and scale").

Clients spread over the three ports: one consistent log; a pre-authorized code works once and wrong PINs are
counted across processes; an OpenID4VP nonce and a QR presentation work once across processes; a wallet session
made on one process is valid on the others; ~300 issuances spread over the processes never share a status slot.
SQLite runs too: three processes on one WAL file, serialized by ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kernel.accounts import Role
from kernel.jose import decode_jws_unverified, public_jwk_dict
from kernel.qr_payload import encode_compact
from kernel.sdjwt import parse_sd_jwt, present
from ledger import merkle
from ledger.commitment import decode_leaf
from ledger.monitor import HttpTiles, check_growth
from ledger.note import Checkpoint, NoteVerifier, open_checkpoint
from ledger.receipt import Receipt, verify_receipt
from ledger.store import NodeReader
from tests.issuer.issuer_fixtures import person_check
from tests.system.cluster import CLIENT_LIMITS, FULL, Cluster, problem_type
from tests.wallet.soft_authenticator import SoftAuthenticator

PRE_AUTH = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
QR_AUDIENCE = "urn:imi:qr-presentation"
NOTARIZE_PER_PROCESS = 100 if FULL else 15
ISSUANCES = 900 if FULL else 300


@pytest.fixture(scope="module")
def http() -> Any:
    with httpx.Client(timeout=60, limits=CLIENT_LIMITS) as client:
        yield client


def _checkpoint(http: httpx.Client, base: str, verifier: NoteVerifier) -> Checkpoint:
    resp = http.get(f"{base}/log/checkpoint")
    assert resp.status_code == 200, resp.text
    checkpoint, _ = open_checkpoint(resp.text, log_verifier=verifier, expected_origin=verifier.name)
    return checkpoint


def _notarize(http: httpx.Client, base: str, headers: dict[str, str], count: int) -> list[Receipt]:
    out = []
    for _ in range(count):
        resp = http.post(
            f"{base}/log/entries",
            params={"wait": "true"},
            json={"event_type": "notarization", "object_hash": secrets.token_hex(32)},
            headers=headers,
        )
        assert resp.status_code in (200, 201, 202), resp.text
        out.append(Receipt.model_validate(resp.json()))
    return out


def _check(cluster: Cluster, http: httpx.Client, body: dict[str, Any] | None = None, server: int = 0) -> str:
    resp = http.post(
        f"{cluster[server].base}/issuer/checks",
        json=body or person_check(),
        headers=cluster.token(Role.OFFICER),
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _offer(cluster: Cluster, http: httpx.Client, server: int = 0) -> dict[str, Any]:
    check_id = _check(cluster, http, server=server)
    resp = http.post(
        f"{cluster[server].base}/issuer/credentials",
        json={"check_id": check_id},
        headers=cluster.token(Role.OFFICER),
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _token(http: httpx.Client, base: str, offer: dict[str, Any], pin: str) -> httpx.Response:
    code = offer["credential_offer"]["grants"][PRE_AUTH]["pre-authorized_code"]
    return http.post(
        f"{base}/oid4vci/token",
        data={"grant_type": PRE_AUTH, "pre-authorized_code": code, "tx_code": pin},
    )


def _wrong(pin: str) -> str:
    return f"{(int(pin) + 1) % 10**6:06d}"


def _holder(
    cluster: Cluster, http: httpx.Client, server: int
) -> tuple[ec.EllipticCurvePrivateKey, dict[str, Any]]:
    key = ec.generate_private_key(ec.SECP256R1())
    check_id = _check(cluster, http, server=server)
    resp = http.post(
        f"{cluster[server].base}/issuer/credentials",
        json={"check_id": check_id, "holder_jwk": public_jwk_dict(key)},
        headers=cluster.token(Role.OFFICER),
    )
    assert resp.status_code == 201, resp.text
    issued: dict[str, Any] = resp.json()
    return key, issued


# --------------------------------------------------------------------------------------------------- the log


def test_one_consistent_log_across_three_processes(cluster: Cluster, http: httpx.Client) -> None:
    vkeys = {http.get(f"{s.base}/log/vkey").text.strip() for s in cluster.servers}
    assert len(vkeys) == 1, f"the processes publish different log keys: {vkeys}"
    verifier = NoteVerifier.from_vkey(vkeys.pop())
    notary = cluster.token(Role.NOTARY)
    with ThreadPoolExecutor(len(cluster.servers)) as pool:
        batches = list(
            pool.map(lambda s: _notarize(http, s.base, notary, NOTARIZE_PER_PROCESS), cluster.servers)
        )
    receipts = [r for batch in batches for r in batch]
    assert len({r.index for r in receipts}) == len(receipts), "two receipts name the same leaf"
    checkpoints = [_checkpoint(http, s.base, verifier) for s in cluster.servers]
    n = len(cluster.servers)
    for i, latest in enumerate(checkpoints):
        # tiles of *another* process prove the growth: they all serve the one tree
        other = cluster[(i + 1) % n].base
        reader = NodeReader(HttpTiles(http, f"{other}/log", latest.size))
        for receipt in receipts:
            signed = verify_receipt(receipt, log_verifier=verifier)
            check_growth(signed, latest, reader)
            assert latest.size >= receipt.tree_size
    for a in checkpoints:
        for b in checkpoints:
            small, big = sorted((a, b), key=lambda c: c.size)
            reader = NodeReader(HttpTiles(http, f"{cluster[0].base}/log", big.size))
            check_growth(small, big, reader)
    final = max(checkpoints, key=lambda c: c.size)
    for k, receipt in enumerate(receipts):
        server = cluster[k % n].base
        proof = http.get(
            f"{server}/log/proof/inclusion", params={"index": receipt.index, "tree_size": final.size}
        ).json()
        leaf = http.get(f"{server}/log/entries/{receipt.index}").json()
        assert leaf["commitment"] == receipt.commitment
        merkle.verify_inclusion(
            leaf_hash=merkle.leaf_hash(bytes.fromhex(_leaf_hex(leaf))),
            index=receipt.index,
            tree_size=final.size,
            proof=[bytes.fromhex(h) for h in proof["proof"]],
            root=final.root_hash,
        )


def _leaf_hex(entry: dict[str, Any]) -> str:
    import base64

    raw = base64.b64decode(entry["leaf_input"])
    assert decode_leaf(raw).commitment.hex() == entry["commitment"]
    return raw.hex()


# --------------------------------------------------------------------------------------------- OpenID4VCI


def test_pre_authorized_code_redeemed_on_one_process_is_used_on_the_others(
    cluster: Cluster, http: httpx.Client
) -> None:
    offer = _offer(cluster, http)
    first = _token(http, cluster[0].base, offer, offer["tx_code"])
    assert first.status_code == 200, first.text
    for server in cluster.servers[1:]:
        again = _token(http, server.base, offer, offer["tx_code"])
        assert again.status_code == 400, again.text  # RFC 6749 section 5.2: invalid_grant is a 400
        assert problem_type(again) == "code-used"
        assert again.json()["error"] == "invalid_grant"


def test_one_code_raced_on_three_processes_is_redeemed_once(cluster: Cluster, http: httpx.Client) -> None:
    for _ in range(3 if FULL else 1):
        offer = _offer(cluster, http)
        targets = [s.base for s in cluster.servers] * 3
        with ThreadPoolExecutor(len(targets)) as pool:
            answers = list(pool.map(lambda base, o=offer: _token(http, base, o, o["tx_code"]), targets))
        codes = sorted(a.status_code for a in answers)
        assert codes.count(200) == 1, codes
        assert {problem_type(a) for a in answers if a.status_code != 200} == {"code-used"}


def test_wrong_pins_are_counted_across_processes(cluster: Cluster, http: httpx.Client) -> None:
    offer = _offer(cluster, http)
    n = len(cluster.servers)
    for attempt in range(5):  # MAX_PIN_ATTEMPTS, spread over the processes
        resp = _token(http, cluster[attempt % n].base, offer, _wrong(offer["tx_code"]))
        assert problem_type(resp) == "pin-wrong", resp.text
    for server in cluster.servers:  # now locked everywhere, even for the right PIN
        locked = _token(http, server.base, offer, offer["tx_code"])
        assert problem_type(locked) == "pin-locked", locked.text


def test_parallel_wrong_pins_on_three_processes_never_exceed_the_limit(
    cluster: Cluster, http: httpx.Client
) -> None:
    offer = _offer(cluster, http)
    targets = [s.base for s in cluster.servers] * 6
    with ThreadPoolExecutor(len(targets)) as pool:
        answers = list(pool.map(lambda b: _token(http, b, offer, _wrong(offer["tx_code"])), targets))
    slugs = [problem_type(a) for a in answers]
    assert slugs.count("pin-wrong") == 5, slugs
    assert set(slugs) == {"pin-wrong", "pin-locked"}
    assert problem_type(_token(http, cluster[2].base, offer, offer["tx_code"])) == "pin-locked"


# --------------------------------------------------------------------------------------------- OpenID4VP


def _request(cluster: Cluster, http: httpx.Client, server: int) -> tuple[dict[str, Any], str]:
    created = http.post(f"{cluster[server].base}/verifier/requests", json={"claims": ["name"]})
    assert created.status_code == 201, created.text
    params = {k: v[0] for k, v in parse_qs(urlsplit(created.json()["qr_text"]).query).items()}
    path = urlsplit(params["request_uri"]).path
    jwt = http.get(f"{cluster[(server + 1) % 3].base}{path}").text  # the request object, from another process
    return decode_jws_unverified(jwt).payload, str(created.json()["id"])


def test_openid4vp_nonce_answered_on_one_process_is_refused_on_the_others(
    cluster: Cluster, http: httpx.Client
) -> None:
    key, issued = _holder(cluster, http, server=2)
    request, tx_id = _request(cluster, http, server=0)
    presentation = present(
        issued["credential"],
        disclose=[("credentialSubject", "name")],
        holder_key=key,
        aud=request["client_id"],
        nonce=request["nonce"],
        iat=int(time.time()),
    )
    form = {
        "vp_token": json.dumps({request["dcql_query"]["credentials"][0]["id"]: [presentation]}),
        "state": request["state"],
    }
    path = urlsplit(request["response_uri"]).path
    answered = http.post(f"{cluster[1].base}{path}", data=form)
    assert answered.status_code == 200, answered.text
    for server in (cluster[2], cluster[0], cluster[1]):
        again = http.post(f"{server.base}{path}", data=form)
        assert again.status_code == 409, again.text
        assert problem_type(again) == "nonce-used"
    status = http.get(f"{cluster[2].base}/verifier/requests/{tx_id}").json()
    assert status["status"] == "verified"
    assert status["result"]["disclosed"] == {"name": "王小明"}  # sealed on process 2, read on process 3


def test_qr_presentation_replayed_on_another_process_is_refused(cluster: Cluster, http: httpx.Client) -> None:
    key, issued = _holder(cluster, http, server=1)

    def qr(receipt: bool = True) -> str:
        extra = {"imi_receipt": issued["receipt"]} if receipt and issued["receipt"] else None
        return present(
            issued["credential"],
            disclose=[("credentialSubject", "name")],
            holder_key=key,
            aud=QR_AUDIENCE,
            nonce=secrets.token_urlsafe(12),
            iat=int(time.time()),
            extra_kb_claims=extra,
        )

    plain = qr()
    first = http.post(f"{cluster[0].base}/verifier/scan", json={"qr": plain})
    assert first.status_code == 200, first.text
    assert first.json()["verified"] is True
    for server in cluster.servers[1:]:
        replay = http.post(f"{server.base}/verifier/scan", json={"qr": plain})
        assert problem_type(replay) == "presentation-replayed", replay.text
    # the compact QR form, raced on all three at once: exactly one kiosk accepts it
    compact = encode_compact(qr(receipt=False))
    targets = [s.base for s in cluster.servers] * 2
    with ThreadPoolExecutor(len(targets)) as pool:
        answers = list(pool.map(lambda b: http.post(f"{b}/verifier/scan", json={"qr": compact}), targets))
    assert sorted(a.status_code for a in answers).count(200) == 1, [a.text[:200] for a in answers]
    assert {problem_type(a) for a in answers if a.status_code != 200} == {"presentation-replayed"}


# -------------------------------------------------------------------------------------------------- wallet


def test_wallet_session_created_on_one_process_is_valid_on_the_others(
    cluster: Cluster, http: httpx.Client
) -> None:
    offer = _offer(cluster, http)
    start = http.post(
        f"{cluster[0].base}/wallet/enrol/start",
        json={"offer": offer["credential_offer_uri"], "pin": offer["tx_code"]},
    )
    assert start.status_code == 200, start.text
    authenticator = SoftAuthenticator("localhost", cluster.public_url)
    finish = http.post(
        f"{cluster[1].base}/wallet/enrol/finish",  # the ceremony started on process 1 ends on process 2
        json={
            "ceremony_id": start.json()["ceremony_id"],
            "credential": authenticator.create(start.json()["publicKey"]),
        },
    )
    assert finish.status_code == 200, finish.text
    session = {"Authorization": f"Bearer {finish.json()['session']}"}
    http.cookies.clear()
    seen = []
    for server in cluster.servers:
        creds = http.get(f"{server.base}/wallet/me/credentials", headers=session)
        assert creds.status_code == 200, creds.text
        seen.append([c["id"] for c in creds.json()])
    assert len(seen[0]) == 1
    assert seen.count(seen[0]) == len(seen)
    # sign in again: options on process 3, assertion on process 1, the new session used on process 2
    login = http.post(f"{cluster[2].base}/wallet/login/start")
    assert login.status_code == 200, login.text
    done = http.post(
        f"{cluster[0].base}/wallet/login/finish",
        json={
            "ceremony_id": login.json()["ceremony_id"],
            "credential": authenticator.get(login.json()["publicKey"]),
        },
    )
    assert done.status_code == 200, done.text
    second = {"Authorization": f"Bearer {done.json()['session']}"}
    http.cookies.clear()
    assert http.get(f"{cluster[1].base}/wallet/me/credentials", headers=second).status_code == 200
    # a logout on one process ends the session on all of them
    assert http.post(f"{cluster[2].base}/wallet/logout", headers=session).status_code == 204
    http.cookies.clear()
    for server in cluster.servers:
        gone = http.get(f"{server.base}/wallet/me/credentials", headers=session)
        assert gone.status_code == 401
        assert problem_type(gone) == "session-invalid"
    assert http.get(f"{cluster[0].base}/wallet/me/credentials", headers=second).status_code == 200


# ---------------------------------------------------------------------------------------------- status list


def _slots(credential: str) -> list[tuple[str, int]]:
    payload = decode_jws_unverified(parse_sd_jwt(credential).jwt).payload
    entries = payload["credentialStatus"]
    entries = entries if isinstance(entries, list) else [entries]
    return [(e["statusListCredential"], int(e["statusListIndex"])) for e in entries]


def test_issuance_spread_over_three_processes_never_shares_a_status_slot(
    cluster: Cluster, http: httpx.Client
) -> None:
    officer = cluster.token(Role.OFFICER)
    jwk = public_jwk_dict(ec.generate_private_key(ec.SECP256R1()))
    bases = [s.base for s in cluster.servers]

    def issue(i: int) -> httpx.Response:
        check_id = _check(cluster, http, server=i % 3)
        return http.post(
            f"{bases[(i + 1) % 3]}/issuer/credentials",
            json={"check_id": check_id, "holder_jwk": jwk},
            headers=officer,
        )

    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(issue, range(ISSUANCES)))
    failed = [a.text[:300] for a in answers if a.status_code != 201]
    assert not failed, failed[:3]
    slots = Counter(slot for a in answers for slot in _slots(a.json()["credential"]))
    assert sum(slots.values()) == 2 * ISSUANCES  # one revocation and one suspension slot each
    twice = [slot for slot, n in slots.items() if n > 1]
    assert not twice, f"status slots handed out twice: {twice[:5]}"
    assert len({a.json()["credential_id"] for a in answers}) == ISSUANCES
