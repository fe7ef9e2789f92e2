"""The citizen's use cases: enrol from a counter offer, keep credentials, present them, see and erase it all."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, update
from sqlmodel import Session, col

from kernel.db import writer
from kernel.did import DidResolver
from kernel.errors import MalformedInput, NotFound
from kernel.jose import PrivateKey, decode_jws_unverified, sign_jws
from kernel.keystore import KeyAlg, KeyStore
from kernel.passkeys import PasskeyInfo, PasskeyService
from kernel.qr import png_data_url, render
from kernel.qr_payload import encode_compact, encode_reference
from kernel.sdjwt import parse_sd_jwt, present
from kernel.sealing import seal, unseal
from kernel.sessions import SessionService
from ledger.commitment import EventType
from ledger.service import LogService, PendingAppend
from wallet_api.tables import PresentationRef
from wallet_api.vault import Vault
from wallet_api.vci_client import parse_offer, redeem
from wallet_api.vp_wallet import VpRequest, post_answer, read_request

QR_AUDIENCE = "urn:imi:qr-presentation"
VERIFIER_HISTORY_AUDIENCE = "urn:imi:verifier-history"  # (the verifier's POST /verifier/history contract)
QR_LIFETIME = 90  # seconds; kiosks accept a KB-JWT for 120 s, so the page refreshes the QR before that
REF_LIFETIME = timedelta(minutes=2)
WALLET_KEY_PURPOSE = "wallet"


@dataclass(frozen=True)
class PresentationQr:
    text: str
    form: str
    version: int
    svg: str
    png: str
    refresh_in: int


def _issuer_payload(credential: str) -> dict[str, Any]:
    return decode_jws_unverified(credential.split("~", 1)[0]).payload


def _disclosed_claims(credential: str) -> dict[str, Any]:
    """The subject claims in the holder's own copy (all disclosures), for the citizen to see and choose from."""
    return {d.name: d.value for d in parse_sd_jwt(credential).disclosures if d.name}


class WalletService:
    def __init__(
        self,
        engine: Engine,
        *,
        vault: Vault,
        passkeys: PasskeyService,
        sessions: SessionService,
        keystore: KeyStore,
        log: LogService,
        http: httpx.Client,
        resolver: DidResolver,
        public_url: str,
        ref_key: bytes,
        trusted_issuers: tuple[str, ...] = (),
        verifiers: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = writer(engine)
        self.vault = vault
        self.passkeys = passkeys
        self.sessions = sessions
        self._keystore = keystore
        self._log = log
        self.http = http
        self.resolver = resolver
        self.public_url = public_url.rstrip("/")
        self._ref_key = ref_key
        self.trusted_issuers = trusted_issuers or (self.public_url,)
        self.verifiers = tuple(v.rstrip("/") for v in verifiers) or (self.public_url,)
        self._clock = clock

    # -- enrolment and sign-in ---------------------------------------------------------------------------
    def start_enrolment(self, offer_text: str, pin: str) -> tuple[str, dict[str, Any]]:
        """Redeem the counter's offer (code + PIN prove who this is) into a new, pending data space; then ask
        for a passkey. Returns the passkey ceremony id and its creation options."""
        offer = parse_offer(offer_text, self.http, allowed_issuers=self.trusted_issuers)
        citizen_id = self.vault.create_citizen()
        try:
            item = self._redeem_into(citizen_id, offer_text, pin)
        except Exception:
            self.vault.erase(citizen_id)  # nothing half-enrolled stays behind
            raise
        name = str(item.get("claims", {}).get("name", "citizen"))
        del offer
        return self.passkeys.registration_options(
            citizen_id=citizen_id, user_name=f"imi-{citizen_id[:8]}", display_name=name
        )

    def finish_enrolment(self, ceremony_id: str, credential: dict[str, Any]) -> tuple[str, str]:
        info = self.passkeys.finish_registration(
            ceremony_id=ceremony_id, credential=credential, label="enrolment"
        )
        citizen_id = self._citizen_of_passkey(info.id)
        self.vault.set_status(citizen_id, "active")
        return citizen_id, self.sessions.create(citizen_id)

    def _citizen_of_passkey(self, passkey_id: str) -> str:
        from kernel.auth_tables import Passkey

        with Session(self._engine, expire_on_commit=False) as s:
            row = s.get(Passkey, passkey_id)
        if row is None:
            raise NotFound("No such passkey.", slug="passkey-not-found")
        return row.citizen_id

    def add_offer(self, citizen_id: str, offer_text: str, pin: str) -> dict[str, Any]:
        return self._redeem_into(citizen_id, offer_text, pin)

    def _redeem_into(self, citizen_id: str, offer_text: str, pin: str) -> dict[str, Any]:
        offer = parse_offer(offer_text, self.http, allowed_issuers=self.trusted_issuers)
        key = ec.generate_private_key(
            ec.SECP256R1()
        )  # one holder key per credential: no cross-credential link
        key_id = self.vault.put(citizen_id, "holder_key", {"pkcs8": _pkcs8(key)})
        redeemed = redeem(self.http, offer, pin=pin, holder_key=key)
        item = {
            "credential": redeemed.credential,
            "format": redeemed.format,
            "configuration_id": redeemed.configuration_id,
            "issuer": offer.credential_issuer,
            "receipt": redeemed.receipt,
            "holder_key_id": key_id,
            "claims": _disclosed_claims(redeemed.credential),
            "credential_id": _issuer_payload(redeemed.credential).get("id"),
            "type": [
                t for t in _issuer_payload(redeemed.credential).get("type", []) if t != "VerifiableCredential"
            ],
            "received_at": int(self._clock()),
        }
        item["id"] = self.vault.put(citizen_id, "credential", item)
        return item

    # -- credentials and presentations ---------------------------------------------------------------------
    def credentials(self, citizen_id: str) -> list[dict[str, Any]]:
        return [
            {"id": item_id, **{k: v for k, v in c.items() if k != "credential"}}
            for item_id, c in self.vault.items(citizen_id, "credential")
        ]

    def _holder_key(self, citizen_id: str, key_id: str) -> PrivateKey:
        data = self.vault.get(citizen_id, key_id, "holder_key")
        key = serialization.load_der_private_key(base64.b64decode(data["pkcs8"]), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def present(
        self,
        citizen_id: str,
        credential_item: str,
        claims: list[str],
        *,
        aud: str,
        nonce: str,
        with_receipt: bool,
    ) -> str:
        item = self.vault.get(citizen_id, credential_item, "credential")
        unknown = set(claims) - set(item.get("claims", {}))
        if not claims or unknown:
            raise MalformedInput(
                f"Choose claims of this credential (unknown: {sorted(unknown)}).", slug="claims-unknown"
            )
        extra = {"imi_receipt": item["receipt"]} if with_receipt and item.get("receipt") else None
        return present(
            item["credential"],
            disclose=[("credentialSubject", c) for c in claims],
            holder_key=self._holder_key(citizen_id, item["holder_key_id"]),
            aud=aud,
            nonce=nonce,
            iat=int(self._clock()),
            extra_kb_claims=extra,
        )

    def presentation_qr(
        self, citizen_id: str, credential_item: str, claims: list[str], *, form: str
    ) -> PresentationQr:
        """A QR for kiosks that scan: ``compact`` (works offline) or ``reference`` (short; kiosk online)."""
        if form == "compact":
            presentation = self.present(
                citizen_id,
                credential_item,
                claims,
                aud=QR_AUDIENCE,
                nonce=secrets.token_urlsafe(8),
                with_receipt=False,
            )
            text = encode_compact(presentation)
        elif form == "reference":
            presentation = self.present(
                citizen_id,
                credential_item,
                claims,
                aud=QR_AUDIENCE,
                nonce=secrets.token_urlsafe(8),
                with_receipt=True,
            )
            text = encode_reference(f"{self.public_url}/wallet/p/{self._park(citizen_id, presentation)}")
        else:
            raise MalformedInput("form must be compact or reference.", slug="qr-form-unknown")
        self._remember(
            citizen_id,
            "presentation",
            {"form": form, "claims": claims, "credential": credential_item},
            anchor=presentation,
        )
        version, png, svg = render(text, "M")
        return PresentationQr(text, form, version, svg, png_data_url(png), QR_LIFETIME)

    def _park(self, citizen_id: str, presentation: str) -> str:
        ref = secrets.token_urlsafe(16)
        blob = seal(self._ref_key, presentation.encode(), aad=ref.encode())
        with Session(self._engine) as s:
            s.add(
                PresentationRef(
                    ref=ref, citizen_id=citizen_id, sealed=blob, expires_at=datetime.now(UTC) + REF_LIFETIME
                )
            )
            s.commit()
        return ref

    def fetch_reference(self, ref: str) -> str:
        """The parked presentation, once; afterwards (or after two minutes) it is gone."""
        now = datetime.now(UTC)
        with Session(self._engine, expire_on_commit=False) as s:
            row = s.get(PresentationRef, ref[:64])
            claimed = s.exec(
                update(PresentationRef)
                .where(
                    col(PresentationRef.ref) == ref[:64],
                    col(PresentationRef.fetched_at).is_(None),
                    col(PresentationRef.expires_at) >= now,
                )
                .values(fetched_at=now)
            )
            s.commit()
        if row is None or claimed.rowcount != 1:
            raise NotFound("This presentation is gone (used or expired).", slug="reference-gone")
        presentation = unseal(self._ref_key, row.sealed, aad=row.ref.encode()).decode()
        self._remember(
            row.citizen_id, "verification", {"channel": "reference-qr", "party": "kiosk"}, anchor=presentation
        )
        return presentation

    # -- OpenID4VP ---------------------------------------------------------------------------------------
    def read_vp_request(self, qr_text: str) -> VpRequest:
        return read_request(qr_text, http=self.http, resolver=self.resolver)

    def answer_vp_request(
        self, citizen_id: str, qr_text: str, credential_item: str, claims: list[str]
    ) -> dict[str, Any]:
        request = self.read_vp_request(qr_text)  # re-read: the wallet keeps no state between the two steps
        if not set(claims) <= set(request.claims):
            raise MalformedInput("Disclose only what the verifier asked for.", slug="claims-not-requested")
        presentation = self.present(
            citizen_id, credential_item, claims, aud=request.client_id, nonce=request.nonce, with_receipt=True
        )
        result = post_answer(self.http, request, presentation)
        self._remember(
            citizen_id,
            "verification",
            {"channel": "openid4vp", "party": request.verifier_did, "claims": claims},
            anchor=presentation,
        )
        return result

    # -- history, export, erasure --------------------------------------------------------------------------
    def _remember(
        self, citizen_id: str, kind: str, entry: dict[str, Any], *, anchor: str | None = None
    ) -> None:
        """A sealed history entry. With ``anchor`` (the presentation released), its hash is committed to the log
        as ``data.released``; the entry keeps the salt, and the receipt is built when the history is read."""
        if anchor is not None:
            pending = self._log.append(EventType.DATA_RELEASED, hashlib.sha256(anchor.encode()).digest())
            entry = {
                **entry,
                "anchor": {
                    "seq": pending.seq,
                    "salt": pending.salt.hex(),
                    "object_hash": pending.object_hash.hex(),
                    "commitment": pending.commitment.hex(),
                },
            }
        self._put_history(citizen_id, {"at": int(self._clock()), "kind": kind, **entry})

    def _put_history(self, citizen_id: str, entry: dict[str, Any], item_id: str | None = None) -> None:
        self.vault.put(citizen_id, "history", entry, item_id=item_id)

    def history(self, citizen_id: str, *, kind: str | None = None) -> list[dict[str, Any]]:
        """Newest first; anchored entries carry their receipt once the log has integrated them."""
        entries = [
            {"id": item_id, **self._with_receipt(citizen_id, item_id, entry)}
            for item_id, entry in self.vault.items(citizen_id, "history")
        ]
        return [e for e in entries if kind is None or e.get("kind") == kind]

    def _with_receipt(self, citizen_id: str, item_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        anchor = entry.get("anchor")
        if not isinstance(anchor, dict) or "receipt" in entry:
            return entry
        receipt = self._log.receipt(
            PendingAppend(
                int(anchor["seq"]),
                EventType.DATA_RELEASED.value,
                bytes.fromhex(anchor["salt"]),
                bytes.fromhex(anchor["object_hash"]),
                bytes.fromhex(anchor["commitment"]),
            )
        )
        if receipt is None:
            return entry  # not integrated yet: the next read has it
        done = {**entry, "receipt": receipt.model_dump()}
        self._put_history(citizen_id, done, item_id)
        return done

    def verifier_records(self, citizen_id: str) -> list[dict[str, Any]]:
        """What the verifier services recorded about this citizen's credentials (kiosks that scanned a QR the
        wallet showed: the wallet cannot know which did). Each verifier is asked with a presentation of the
        credential that discloses nothing and whose KB-JWT is for ``urn:imi:verifier-history``; a verifier that
        cannot be reached is reported as such, not as an empty history. Newest first."""
        records: list[dict[str, Any]] = []
        for item_id, item in self.vault.items(citizen_id, "credential"):
            holder_key = self._holder_key(citizen_id, item["holder_key_id"])
            for verifier in self.verifiers:
                proof = present(
                    item["credential"],
                    disclose=[],
                    holder_key=holder_key,
                    aud=VERIFIER_HISTORY_AUDIENCE,
                    nonce=secrets.token_urlsafe(16),
                    iat=int(self._clock()),
                )
                where = {"verifier": verifier, "credential_id": item_id}
                try:
                    resp = self.http.post(f"{verifier}/verifier/history", json={"presentation": proof})
                except httpx.HTTPError:
                    resp = None
                if resp is None or resp.status_code != 200:
                    status = None if resp is None else resp.status_code
                    records.append({**where, "unreachable": True, "status": status})
                    continue
                records += [{**where, **record} for record in resp.json().get("records", [])]
        return sorted(records, key=lambda r: str(r.get("at", "")), reverse=True)

    def export(self, citizen_id: str) -> dict[str, Any]:
        """Everything about the citizen (PIPL art. 45), except private keys, which never leave the wallet."""
        return {
            "exported_at": int(self._clock()),
            "credentials": [{"id": i, **c} for i, c in self.vault.items(citizen_id, "credential")],
            "history": self.history(citizen_id),
            "passkeys": [_passkey_json(p) for p in self.passkeys.list_passkeys(citizen_id)],
        }

    def erase(self, citizen_id: str) -> dict[str, Any]:
        """Crypto-shred the data space; return a signed statement and its anchor receipt."""
        key = self._keystore.active(WALLET_KEY_PURPOSE, KeyAlg.ES256)
        statement = sign_jws(
            {
                "type": "ErasureStatement",
                "subject": hashlib.sha256(citizen_id.encode()).hexdigest(),
                "erased_at": int(self._clock()),
                "scope": ["credentials", "holder keys", "history", "passkeys"],
            },
            key.private_key,
            typ="imi-erasure+jwt",
            kid=key.kid,
        )
        pending = self._log.append(EventType.ERASURE, hashlib.sha256(statement.encode()).digest())
        self.vault.erase(citizen_id)
        self.passkeys.remove_all(citizen_id)
        self.sessions.revoke_all(citizen_id)
        receipt = self._log.wait_receipts([pending])[0]
        return {"statement": statement, "receipt": receipt.model_dump(), "verification_key": key.public_jwk}


def _passkey_json(info: PasskeyInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "label": info.label,
        "transports": list(info.transports),
        "created_at": info.created_at.isoformat(),
        "last_used_at": info.last_used_at.isoformat() if info.last_used_at else None,
    }


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return base64.b64encode(der).decode()
