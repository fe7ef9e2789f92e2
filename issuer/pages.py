"""The counter page (``/counter``) for officers at a desktop: sign in, record the in-person check, show the
credential-offer QR and PIN, look up a credential and change its status, verify a citizen's QR.

A shell rendered in the officer's language; its script calls the officer API (``issuer.api``) with the
officer's bearer token and the verifier's ``/verifier/scan``. Officers have no passkey sign-in yet, so the page
asks for a token from ``imi admin token --role officer`` and keeps it in ``sessionStorage`` (gone when the tab
closes). ``GET /counter/me`` tells the page whose token it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict

from issuer.api import OfficerDep
from kernel.web_pages import environment, render_page, script

HERE: Final = Path(__file__).parent
router = APIRouter(tags=["pages"])
_env = environment(HERE / "templates")
SCRIPTS: Final = ("/static/vendor/jsQR.js", "/static/js/outcome.js", "/counter/counter.js")


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


@router.get("/counter/me", response_model=OfficerOut, summary="Whose officer token this is (counter sign-in)")
def whoami(who: OfficerDep) -> OfficerOut:
    return OfficerOut(name=who.name, role=who.role.value)
