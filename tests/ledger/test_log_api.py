"""The log over HTTP: checkpoints, notarization, receipts, tiles, proofs, and refusals as problem+json."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from imi.cli import app as cli
from kernel.accounts import Role
from kernel.errors import VerificationFailed
from ledger import merkle
from ledger.commitment import decode_leaf
from ledger.monitor import HttpTiles
from ledger.note import NoteVerifier, open_checkpoint
from ledger.receipt import Receipt, verify_receipt
from ledger.store import NodeReader
from ledger.tiles import TileID, decode_bundle

TokenFor = Callable[[Role], dict[str, str]]


def _notarize(client: TestClient, headers: dict[str, str], n: int) -> list[Receipt]:
    out = []
    for _ in range(n):
        resp = client.post(
            "/log/entries?wait=true", json={"object_hash": secrets.token_hex(32)}, headers=headers
        )
        assert resp.status_code in (200, 201, 202), resp.text
        out.append(Receipt.model_validate(resp.json()))
    return out


def _verifier(client: TestClient) -> NoteVerifier:
    return NoteVerifier.from_vkey(client.get("/log/vkey").text.strip())


def test_empty_log_publishes_a_signed_checkpoint(client: TestClient) -> None:
    verifier = _verifier(client)
    cp, _ = open_checkpoint(
        client.get("/log/checkpoint").text, log_verifier=verifier, expected_origin="testserver/log"
    )
    assert cp.size == 0
    assert cp.root_hash == merkle.EMPTY_ROOT


def test_notarized_hash_gets_a_receipt_that_verifies_offline(
    client: TestClient, token_for: TokenFor, tmp_path: Path
) -> None:
    receipts = _notarize(client, token_for(Role.NOTARY), 3)
    verifier = _verifier(client)
    for r in receipts:
        cp = verify_receipt(r, log_verifier=verifier, expected_object_hash=bytes.fromhex(r.object_hash))
        assert cp.size >= r.index + 1
    assert sorted(r.index for r in receipts) == [0, 1, 2]
    path = tmp_path / "receipt.json"
    path.write_text(receipts[0].model_dump_json())
    ok = CliRunner().invoke(cli, ["log", "verify-receipt", str(path), "--vkey", verifier.vkey])
    assert ok.exit_code == 0, ok.output
    forged = receipts[0].model_copy(update={"salt": secrets.token_hex(32)})
    path.write_text(forged.model_dump_json())
    bad = CliRunner().invoke(cli, ["log", "verify-receipt", str(path), "--vkey", verifier.vkey])
    assert bad.exit_code == 1


def test_receipt_for_another_leaf_is_refused(client: TestClient, token_for: TokenFor) -> None:
    a, b = _notarize(client, token_for(Role.NOTARY), 2)
    # b's position and proof, a's commitment: a receipt that claims a's object sits at b's leaf
    swapped = b.model_copy(update={"salt": a.salt, "object_hash": a.object_hash, "commitment": a.commitment})
    with pytest.raises(VerificationFailed) as info:
        verify_receipt(swapped, log_verifier=_verifier(client))
    assert info.value.slug == "inclusion-proof-invalid"


def test_leaves_are_commitments_only(client: TestClient, token_for: TokenFor) -> None:
    (r,) = _notarize(client, token_for(Role.NOTARY), 1)
    entry = client.get(f"/log/entries/{r.index}").json()
    assert entry["commitment"] == r.commitment
    assert r.object_hash not in str(entry)  # the object hash itself never reaches the log
    assert r.salt not in str(entry)


def test_tiles_and_bundles_rebuild_the_signed_root(
    client: TestClient, token_for: TokenFor, app: FastAPI
) -> None:
    app.state.log.append_many([("notarization", secrets.token_bytes(32)) for _ in range(700)])
    app.state.log.integrate_now()
    cp, _ = open_checkpoint(
        client.get("/log/checkpoint").text, log_verifier=_verifier(client), expected_origin="testserver/log"
    )
    assert cp.size == 700
    leaves = []
    for index, width in ((0, 256), (1, 256), (2, 188)):
        tid = TileID(-1, index, width)
        resp = client.get(f"/log/{tid.path()}")
        assert resp.status_code == 200
        leaves += decode_bundle(resp.content)
    assert [decode_leaf(x).event_type for x in leaves[:3]] == ["notarization"] * 3
    hashes = [merkle.leaf_hash(x) for x in leaves]
    assert merkle.root_of(hashes) == cp.root_hash
    level0 = client.get("/log/tile/0/000").content
    assert level0 == b"".join(hashes[:256])
    assert client.get("/log/tile/0/002.p/188").content == b"".join(hashes[512:700])
    assert client.get("/log/tile/0/002.p/10").content == b"".join(hashes[512:522])
    reader = NodeReader(HttpTiles(client, "/log", cp.size))
    plan = merkle.root_plan(cp.size)
    nodes = reader.nodes(plan)
    assert merkle.fold([nodes[n] for n in plan]) == cp.root_hash
    full = client.get("/log/tile/0/000")
    assert "immutable" in full.headers["cache-control"]


def test_json_proofs_verify(client: TestClient, app: FastAPI) -> None:
    app.state.log.append_many([("notarization", secrets.token_bytes(32)) for _ in range(300)])
    app.state.log.integrate_now()
    first = client.get("/log/checkpoint").text
    app.state.log.append_many([("notarization", secrets.token_bytes(32)) for _ in range(77)])
    app.state.log.integrate_now()
    p = client.get("/log/proof/consistency", params={"first": 300, "second": 377}).json()
    root300 = client.get("/log/proof/inclusion", params={"index": 5, "tree_size": 300}).json()["root_hash"]
    merkle.verify_consistency(
        size1=300,
        size2=377,
        proof=[bytes.fromhex(h) for h in p["proof"]],
        root1=bytes.fromhex(root300),
        root2=bytes.fromhex(p["root_hash"]),
    )
    assert "300" in first
    leaf = client.get("/log/entries/123").json()
    inc = client.get("/log/proof/inclusion", params={"index": 123, "tree_size": 377}).json()
    merkle.verify_inclusion(
        leaf_hash=merkle.leaf_hash(base64.b64decode(leaf["leaf_input"])),
        index=123,
        tree_size=377,
        proof=[bytes.fromhex(h) for h in inc["proof"]],
        root=bytes.fromhex(inc["root_hash"]),
    )


@pytest.mark.parametrize(
    ("method", "url", "status", "slug"),
    [
        ("get", "/log/tile/0/1", 400, "tile-path-invalid"),
        ("get", "/log/tile/0/x1/000", 400, "tile-path-invalid"),
        ("get", "/log/tile/64/000", 400, "tile-path-invalid"),
        ("get", "/log/tile/0/000.p/0", 400, "tile-path-invalid"),
        ("get", "/log/tile/0/000.p/256", 400, "tile-path-invalid"),
        ("get", "/log/tile/abc/000", 400, "tile-path-invalid"),
        ("get", "/log/tile/0/000", 404, "tile-not-found"),
        ("get", "/log/tile/0/x999/x999/x999/x999/x999/x999/999", 400, "tile-path-invalid"),
        ("get", "/log/tile/entries/000", 404, "tile-not-found"),
        ("get", "/log/proof/inclusion?index=0&tree_size=5", 400, "tree-size-too-large"),
        ("get", "/log/proof/inclusion?index=abc&tree_size=5", 422, "request-invalid"),
        ("get", "/log/proof/inclusion?index=99999999999999999999999&tree_size=1", 422, "request-invalid"),
        ("get", "/log/proof/inclusion?index=-1&tree_size=1", 422, "request-invalid"),
        ("get", "/log/proof/consistency?first=3&second=1", 400, "tree-size-too-large"),
        ("get", "/log/entries/0", 404, "entry-not-found"),
        ("get", "/log/entries/99999999999999999999999", 400, "index-out-of-range"),
        ("get", "/log/nope", 404, "not-found"),
        ("delete", "/log/checkpoint", 405, "method-not-allowed"),
        ("post", "/log/entries", 401, "token-missing"),
    ],
)
def test_bad_input_is_a_problem_not_a_crash(
    client: TestClient, method: str, url: str, status: int, slug: str
) -> None:
    resp = getattr(client, method)(url)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["type"] == f"urn:imi:problem:{slug}"
    assert body["status"] == status


def test_notarize_needs_a_notary(client: TestClient, token_for: TokenFor) -> None:
    body = {"object_hash": "00" * 32}
    assert (
        client.post("/log/entries", json=body, headers={"Authorization": "Bearer imi_wrong"})
        .json()["type"]
        .endswith("token-invalid")
    )
    resp = client.post("/log/entries", json=body, headers=token_for(Role.OFFICER))
    assert resp.status_code == 403
    assert resp.json()["type"].endswith("role-forbidden")
    resp = client.post("/log/entries", json={"object_hash": "zz"}, headers=token_for(Role.NOTARY))
    assert resp.status_code == 422
    resp = client.post("/log/entries", json={"object_hash": "00" * 32}, headers=token_for(Role.NOTARY))
    assert resp.status_code == 202
    assert resp.json()["status"] == "pending"
