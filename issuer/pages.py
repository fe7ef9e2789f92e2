"""The counter page (``/counter``) for officers at a desktop: sign in, record the in-person check, show the
credential-offer QR and PIN, find the credentials issued from the check, change a credential's status, verify
a citizen's QR.

A shell rendered in the officer's language; its script calls the officer API (``issuer.api``) and the
verifier's ``/verifier/scan``. Officers sign in with a passkey (``/staff/login/*``, ``issuer.api_staff``), which
sets the HttpOnly ``imi_staff`` cookie; the script never holds a token. The first time, the page takes the
bearer token from ``imi admin token --role officer`` once, adds a passkey with it (``/staff/passkeys/*``) and
forgets it. ``GET /counter/me`` tells the page who is signed in; ``POST /counter/signout`` ends the session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

from fastapi import APIRouter, Cookie, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict

from issuer.api import OfficerDep
from issuer.api_staff import STAFF_COOKIE, SessionsDep
from kernel.web_pages import environment, render_page, script

HERE: Final = Path(__file__).parent
router = APIRouter(tags=["pages"])
_env = environment(HERE / "templates")
SCRIPTS: Final = (
    "/static/vendor/jsQR.js",
    "/static/js/webauthn-json.js",
    "/static/js/outcome.js",
    "/counter/counter.js",
)


class OfficerOut(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    role: str


@router.get("/counter", response_class=HTMLResponse, include_in_schema=False)
def counter_page(request: Request) -> HTMLResponse:
    return render_page(
        request, _env, "counter.html", title_key="counter.title", scripts=SCRIPTS, body_class="counter"
    )


@router.get("/counter/counter.js", include_in_schema=False)
def counter_script() -> FileResponse:
    return script(HERE / "static" / "counter.js")


@router.get("/counter/me", response_model=OfficerOut, summary="Who is signed in at the counter")
def whoami(who: OfficerDep) -> OfficerOut:
    return OfficerOut(name=who.name, role=who.role.value)


@router.post("/counter/signout", status_code=204, summary="End the counter's staff session (idempotent)")
def signout(sessions: SessionsDep, imi_staff: Annotated[str | None, Cookie()] = None) -> Response:
    if imi_staff:
        sessions.revoke(imi_staff)
    response = Response(status_code=204)
    response.delete_cookie(STAFF_COOKIE, path="/", httponly=True, samesite="strict")
    return response
