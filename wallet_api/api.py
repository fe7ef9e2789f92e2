"""HTTP face of the citizen's wallet (``/wallet``). Every ``/wallet/me`` route acts only on the signed-in
citizen's own data: ids of anything else answer 404, exactly like ids that do not exist."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Cookie, Depends, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from kernel.accounts import STAFF_SUBJECT
from kernel.errors import Unauthenticated
from kernel.ratelimit import RateLimit
from wallet_api.service import WalletService

router = APIRouter(prefix="/wallet", tags=["wallet"])
# Per-client limits, shared by every process (kernel.ratelimit): guessing PINs or hammering sign-in is slow.
PIN_ENTRY = Depends(RateLimit(10, 60, scope="pin-entry"))
SIGN_IN = Depends(RateLimit(30, 60, scope="wallet-login"))
SESSION_COOKIE = "imi_session"


def get_wallet(request: Request) -> WalletService:
    service: WalletService = request.app.state.wallet
    return service


WalletDep = Annotated[WalletService, Depends(get_wallet)]


def current_citizen(
    wallet: WalletDep,
    authorization: Annotated[str | None, Header()] = None,
    imi_session: Annotated[str | None, Cookie()] = None,
) -> str:
    token = imi_session
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if not token:
        raise Unauthenticated("Sign in with your passkey first.", slug="session-missing")
    subject = wallet.sessions.resolve(token)
    if subject.startswith(STAFF_SUBJECT):
        raise Unauthenticated("Staff sessions do not open a citizen's wallet.", slug="session-invalid")
    return subject


CitizenDep = Annotated[str, Depends(current_citizen)]


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OfferIn(_In):
    offer: str = Field(
        max_length=8192, description="The credential-offer QR text (openid-credential-offer://...)"
    )
    pin: str = Field(max_length=16, description="The PIN shown at the counter (tx_code)")


class CeremonyIn(_In):
    ceremony_id: str = Field(max_length=64)
    credential: dict[str, Any] = Field(description="The PublicKeyCredential from navigator.credentials")


class QrIn(_In):
    claims: list[str] = Field(min_length=1, max_length=20)
    form: Literal["compact", "reference"] = "compact"


class VpReadIn(_In):
    qr: str = Field(max_length=4096)


class VpAnswerIn(_In):
    qr: str = Field(max_length=4096)
    credential_id: str = Field(max_length=64)
    claims: list[str] = Field(min_length=1, max_length=20)


def _session_response(body: dict[str, Any], token: str) -> JSONResponse:
    resp = JSONResponse({**body, "session": token})
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", max_age=15 * 60, path="/")
    return resp


@router.post(
    "/enrol/start",
    summary="Redeem the counter's offer (code + PIN) and get passkey options",
    dependencies=[PIN_ENTRY],
)
def enrol_start(body: OfferIn, wallet: WalletDep) -> dict[str, Any]:
    ceremony_id, options = wallet.start_enrolment(body.offer, body.pin)
    return {"ceremony_id": ceremony_id, "publicKey": options}


@router.post("/enrol/finish", summary="Register the passkey; the data space becomes active; signed in")
def enrol_finish(body: CeremonyIn, wallet: WalletDep) -> JSONResponse:
    citizen_id, token = wallet.finish_enrolment(body.ceremony_id, body.credential)
    del citizen_id
    return _session_response({"enrolled": True}, token)


@router.post(
    "/login/start", summary="Passkey sign-in options (discoverable credentials)", dependencies=[SIGN_IN]
)
def login_start(wallet: WalletDep) -> dict[str, Any]:
    ceremony_id, options = wallet.passkeys.authentication_options()
    return {"ceremony_id": ceremony_id, "publicKey": options}


@router.post("/login/finish", summary="Verify the passkey assertion; signed in", dependencies=[SIGN_IN])
def login_finish(body: CeremonyIn, wallet: WalletDep) -> JSONResponse:
    citizen_id = wallet.passkeys.finish_authentication(
        ceremony_id=body.ceremony_id, credential=body.credential
    )
    wallet.vault.citizen(citizen_id)  # erased or unknown citizens cannot sign in
    return _session_response({"signed_in": True}, wallet.sessions.create(citizen_id))


@router.post("/logout", summary="End this session")
def logout(
    wallet: WalletDep,
    citizen: CitizenDep,
    imi_session: Annotated[str | None, Cookie()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    token = (
        authorization[7:].strip()
        if authorization and authorization.lower().startswith("bearer ")
        else imi_session
    )
    if token:
        wallet.sessions.revoke(token)
    del citizen
    resp = Response(status_code=204)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/me/passkeys", summary="My passkeys")
def my_passkeys(wallet: WalletDep, citizen: CitizenDep) -> list[dict[str, Any]]:
    return [
        {"id": p.id, "label": p.label, "created_at": str(p.created_at), "last_used_at": str(p.last_used_at)}
        for p in wallet.passkeys.list_passkeys(citizen)
    ]


@router.post("/me/passkeys/start", summary="Options to add another passkey")
def add_passkey_start(wallet: WalletDep, citizen: CitizenDep) -> dict[str, Any]:
    ceremony_id, options = wallet.passkeys.registration_options(
        citizen_id=citizen, user_name=f"imi-{citizen[:8]}", display_name="IMI"
    )
    return {"ceremony_id": ceremony_id, "publicKey": options}


@router.post("/me/passkeys/finish", summary="Register the additional passkey")
def add_passkey_finish(body: CeremonyIn, wallet: WalletDep, citizen: CitizenDep) -> dict[str, Any]:
    info = wallet.passkeys.finish_registration(
        ceremony_id=body.ceremony_id, credential=body.credential, expected_citizen_id=citizen
    )
    return {"id": info.id, "citizen": "you" if citizen else ""}


@router.delete("/me/passkeys/{passkey_id}", status_code=204, summary="Remove a passkey (not the last one)")
def remove_passkey(passkey_id: str, wallet: WalletDep, citizen: CitizenDep) -> Response:
    wallet.passkeys.remove_passkey(citizen, passkey_id)
    return Response(status_code=204)


@router.get("/me/credentials", summary="My credentials (the claims I hold)")
def my_credentials(wallet: WalletDep, citizen: CitizenDep) -> list[dict[str, Any]]:
    return wallet.credentials(citizen)


@router.post(
    "/me/offers",
    status_code=201,
    summary="Redeem another credential offer into my wallet",
    dependencies=[PIN_ENTRY],
)
def redeem_offer(body: OfferIn, wallet: WalletDep, citizen: CitizenDep) -> dict[str, Any]:
    item = wallet.add_offer(citizen, body.offer, body.pin)
    return {k: v for k, v in item.items() if k != "credential"}


@router.post("/me/credentials/{item_id}/qr", summary="A presentation QR with only the chosen claims")
def presentation_qr(item_id: str, body: QrIn, wallet: WalletDep, citizen: CitizenDep) -> dict[str, Any]:
    qr = wallet.presentation_qr(citizen, item_id, body.claims, form=body.form)
    return {
        "text": qr.text,
        "form": qr.form,
        "qr_version": qr.version,
        "svg": qr.svg,
        "png": qr.png,
        "refresh_in": qr.refresh_in,
    }


@router.get(
    "/p/{ref}", response_class=PlainTextResponse, summary="A parked presentation (reference QR), once"
)
def parked(ref: str, wallet: WalletDep) -> Response:
    return PlainTextResponse(wallet.fetch_reference(ref), headers={"Cache-Control": "no-store"})


@router.post("/me/vp/read", summary="Read a kiosk's OpenID4VP request: who asks for what")
def vp_read(body: VpReadIn, wallet: WalletDep, citizen: CitizenDep) -> dict[str, Any]:
    del citizen
    req = wallet.read_vp_request(body.qr)
    return {
        "verifier": req.verifier_did,
        "client_id": req.client_id,
        "claims": list(req.claims),
        "credential_types": list(req.credential_types),
    }


@router.post("/me/vp/answer", summary="Answer the request with the chosen claims")
def vp_answer(body: VpAnswerIn, wallet: WalletDep, citizen: CitizenDep) -> dict[str, Any]:
    return {
        "sent": True,
        "verifier_response": wallet.answer_vp_request(citizen, body.qr, body.credential_id, body.claims),
    }


@router.get("/me/history", summary="Every verification and release of my data, newest first")
def history(wallet: WalletDep, citizen: CitizenDep, kind: str | None = None) -> list[dict[str, Any]]:
    return wallet.history(citizen, kind=kind)


@router.get(
    "/me/verifications",
    summary="What verifier services recorded about my credentials (kiosk scans of my QR codes), newest first",
)
def verifications(wallet: WalletDep, citizen: CitizenDep) -> list[dict[str, Any]]:
    return wallet.verifier_records(citizen)


@router.get("/me/export", summary="All my data as JSON (PIPL art. 45)")
def export(wallet: WalletDep, citizen: CitizenDep) -> JSONResponse:
    return JSONResponse(
        wallet.export(citizen), headers={"Content-Disposition": "attachment; filename=imi-export.json"}
    )


@router.delete("/me", summary="Erase my data space (crypto-shredding); returns a signed, anchored receipt")
def erase(wallet: WalletDep, citizen: CitizenDep) -> JSONResponse:
    resp = JSONResponse(wallet.erase(citizen))
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp
