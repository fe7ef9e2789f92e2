"""The kiosk page (``/kiosk``) for a large touch screen: it shows an OpenID4VP request QR, waits for the
wallet's answer (long-poll of ``GET /verifier/requests/{id}``), shows the outcome in large type (green or red,
the disclosed claims and nothing more) and resets itself; or it scans a citizen's presentation QR with its
camera (``POST /verifier/scan``).

Configuration is in the kiosk's URL, set once when the kiosk is installed:
``/kiosk?claims=name,birthDate&verifier_id=kiosk-3&reset=10&lang=zh-CN``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from kernel.web_pages import environment, render_page, script

HERE: Final = Path(__file__).parent
router = APIRouter(tags=["pages"])
_env = environment(HERE / "templates")
SCRIPTS: Final = ("/static/vendor/jsQR.js", "/static/js/outcome.js", "/kiosk/kiosk.js")
DEFAULT_CLAIMS: Final = ("name",)
_CLAIM = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
_VERIFIER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def kiosk_config(claims: str | None, verifier_id: str | None, reset: str | None) -> dict[str, str]:
    """The kiosk's settings from its URL, each replaced by its default when malformed."""
    names = [c for c in (claims or "").split(",") if _CLAIM.match(c)][:20] or list(DEFAULT_CLAIMS)
    vid = verifier_id if verifier_id and _VERIFIER_ID.match(verifier_id) else "kiosk"
    seconds = int(reset) if reset and reset.isdigit() else 10
    return {
        "claims": ",".join(dict.fromkeys(names)),
        "verifier-id": vid,
        "reset": str(min(max(seconds, 2), 120)),
    }


@router.get("/kiosk", response_class=HTMLResponse, include_in_schema=False)
def kiosk_page(
    request: Request, claims: str | None = None, verifier_id: str | None = None, reset: str | None = None
) -> HTMLResponse:
    return render_page(
        request,
        _env,
        "kiosk.html",
        title_key="kiosk.title",
        scripts=SCRIPTS,
        body_class="kiosk",
        data=kiosk_config(claims, verifier_id, reset),
    )


@router.get("/kiosk/kiosk.js", include_in_schema=False)
def kiosk_script() -> FileResponse:
    return script(HERE / "static" / "kiosk.js")
