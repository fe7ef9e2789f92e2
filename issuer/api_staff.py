"""Passkey sign-in for people at the counter (officers, admins): a service account adds a passkey once with its
bearer token, then signs in with the passkey alone and gets a short session (bearer ``imiw_...`` or the
``imi_staff`` cookie, HttpOnly, SameSite=Strict). Bearer tokens remain for automation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kernel.accounts import Role, principal_for_subject, require_role, staff_subject
from kernel.errors import Forbidden
from kernel.passkeys import PasskeyService
from kernel.ratelimit import RateLimit
from kernel.sessions import SessionService
from kernel.web import EngineDep, PrincipalDep

router = APIRouter(prefix="/staff", tags=["staff"])
STAFF_SIGN_IN = Depends(RateLimit(30, 60, scope="staff-login"))
STAFF_COOKIE = "imi_staff"


def get_passkeys(request: Request) -> PasskeyService:
    service: PasskeyService = request.app.state.passkeys
    return service


def get_sessions(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


PasskeysDep = Annotated[PasskeyService, Depends(get_passkeys)]
SessionsDep = Annotated[SessionService, Depends(get_sessions)]


class CeremonyIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    ceremony_id: str = Field(max_length=64)
    credential: dict[str, Any]


@router.post("/passkeys/start", summary="Add a passkey to my staff account (bearer token or staff session)")
def passkey_start(who: PrincipalDep, passkeys: PasskeysDep) -> dict[str, Any]:
    require_role(who, Role.OFFICER, Role.ADMIN, Role.AUDITOR, Role.NOTARY)
    assert who.account_id is not None
    ceremony_id, options = passkeys.registration_options(
        citizen_id=staff_subject(who.account_id),
        user_name=who.name,
        display_name=f"{who.name} ({who.role.value})",
    )
    return {"ceremony_id": ceremony_id, "publicKey": options}


@router.post("/passkeys/finish", summary="Register the staff passkey")
def passkey_finish(body: CeremonyIn, who: PrincipalDep, passkeys: PasskeysDep) -> dict[str, Any]:
    require_role(who, Role.OFFICER, Role.ADMIN, Role.AUDITOR, Role.NOTARY)
    assert who.account_id is not None
    info = passkeys.finish_registration(
        ceremony_id=body.ceremony_id,
        credential=body.credential,
        label=who.role.value,
        expected_citizen_id=staff_subject(who.account_id),
    )
    return {"id": info.id}


@router.post("/login/start", summary="Staff passkey sign-in options", dependencies=[STAFF_SIGN_IN])
def login_start(passkeys: PasskeysDep) -> dict[str, Any]:
    ceremony_id, options = passkeys.authentication_options()
    return {"ceremony_id": ceremony_id, "publicKey": options}


@router.post(
    "/login/finish", summary="Verify the staff passkey; a short session", dependencies=[STAFF_SIGN_IN]
)
def login_finish(
    body: CeremonyIn, passkeys: PasskeysDep, sessions: SessionsDep, engine: EngineDep
) -> JSONResponse:
    subject = passkeys.finish_authentication(ceremony_id=body.ceremony_id, credential=body.credential)
    principal = principal_for_subject(engine, subject)
    if principal.account_id is None:
        raise Forbidden("This passkey belongs to a citizen wallet, not to staff.", slug="not-staff")
    token = sessions.create(subject)
    resp = JSONResponse({"session": token, "name": principal.name, "role": principal.role.value})
    resp.set_cookie(STAFF_COOKIE, token, httponly=True, samesite="strict", max_age=15 * 60, path="/")
    return resp
