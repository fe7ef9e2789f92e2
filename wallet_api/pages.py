"""The wallet page (``/wallet``) for a citizen's phone: enrol and sign in with a passkey; the credentials;
choose what to disclose and show a QR that refreshes itself; answer a kiosk's request; the consent inbox;
access history; export; erasure.

A shell rendered in the citizen's language; its scripts call the citizen's API (``wallet_api.api`` and, when
the composition root wires it, the consent API under ``/wallet/me/consents``) with the ``imi_session`` cookie
that the passkey ceremonies set (httponly, SameSite=Strict: the page's script never sees it). A consent
request's link, ``/wallet/consents/<id>``, opens the same page on that request.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from kernel.errors import NotFound
from kernel.web_pages import environment, render_page, script

HERE: Final = Path(__file__).parent
router = APIRouter(tags=["pages"])
_env = environment(HERE / "templates")
SCRIPTS: Final = (
    "/static/vendor/jsQR.js",
    "/static/js/webauthn-json.js",
    "/wallet/app/wallet.js",
    "/wallet/app/consents.js",
)
_CONSENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_SCRIPT_FILES: Final = {"wallet.js", "consents.js"}


def _page(request: Request, open_consent: str = "") -> HTMLResponse:
    consents = "on" if getattr(request.app.state, "consent", None) is not None else "off"
    return render_page(
        request,
        _env,
        "wallet.html",
        title_key="wallet.title",
        scripts=SCRIPTS,
        body_class="wallet",
        data={"consents": consents, "open-consent": open_consent},
    )


@router.get("/wallet", response_class=HTMLResponse, include_in_schema=False)
def wallet_page(request: Request) -> HTMLResponse:
    return _page(request)


@router.get("/wallet/consents/{consent_id}", response_class=HTMLResponse, include_in_schema=False)
def consent_link(request: Request, consent_id: str) -> HTMLResponse:
    """The link a third party gives the citizen: the wallet page, opened on that request."""
    return _page(request, consent_id if _CONSENT_ID.match(consent_id) else "")


@router.get("/wallet/app/{name}", include_in_schema=False)
def wallet_script(name: str) -> FileResponse:
    if name not in _SCRIPT_FILES:
        raise NotFound("No such file.", slug="not-found")
    return script(HERE / "static" / name)
