"""``imi demo``: the story so far, end to end, in one process on a temporary database."""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from imi.app import create_app
from kernel.accounts import Role, create_token
from kernel.settings import Settings
from ledger.note import NoteVerifier
from ledger.receipt import Receipt, verify_receipt


def run_demo(say: Callable[[str], object]) -> int:
    """Run every step, print what happens, return the exit code (0 when every check passed)."""
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from fastapi.testclient import TestClient

    with tempfile.TemporaryDirectory(prefix="imi-demo-") as tmp:
        settings = Settings(data_dir=Path(tmp), log_batch_interval=0.05)
        app = create_app(settings)
        with TestClient(app) as client:
            say(f"1. Fresh IMI on {settings.resolved_database_url}")
            vkey = client.get("/log/vkey").text.strip()
            say(f"   log verifier key: {vkey}")
            token = create_token(app.state.engine, role=Role.NOTARY, name="district archive")
            say("2. A department notarizes three documents (only their hashes are sent)")
            receipts = []
            for name in ("land-registry-2026-001.pdf", "permit-7781.pdf", "minutes-2026-11-26.pdf"):
                digest = hashlib.sha256(name.encode()).hexdigest()
                resp = client.post(
                    "/log/entries?wait=true",
                    json={"object_hash": digest},
                    headers={"Authorization": f"Bearer {token}"},
                )
                resp.raise_for_status()
                receipts.append(Receipt.model_validate(resp.json()))
                say(f"   {name}: leaf {receipts[-1].index}, proven in a tree of {receipts[-1].tree_size}")
            say("3. Anyone checks a receipt offline with only the log key")
            verifier = NoteVerifier.from_vkey(vkey)
            for r in receipts:
                cp = verify_receipt(r, log_verifier=verifier)
                say(f"   receipt {r.index}: OK against checkpoint of size {cp.size}")
            say("4. The checkpoint, as a monitor sees it")
            say("   " + client.get("/log/checkpoint").text.replace("\n", "\n   ").rstrip())
            say("5. A tampered receipt is refused")
            bad = r.model_copy(update={"object_hash": hashlib.sha256(b"forged").hexdigest()})
            try:
                verify_receipt(bad, log_verifier=verifier)
            except Exception as exc:
                say(f"   refused: {type(exc).__name__}: {exc}")
            else:
                say("   ERROR: a tampered receipt verified")
                return 1
            say(json.dumps({"demo": "ok", "entries": len(receipts)}))
    return 0
