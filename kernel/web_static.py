"""The shared page assets at ``/static``: style sheet, message tables, the WebAuthn JSON helper, the QR decoder.

``mount_static(app)`` is called by the composition root next to the page routers (``issuer.pages``,
``verifier.pages``, ``wallet_api.pages``). The files are plain and committed; there is no build step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR: Final = Path(__file__).parent / "static"


class _Assets(StaticFiles):
    """Static files with ``nosniff`` and a short cache (the files change with a deployment, not per user)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "public, max-age=300")
        return response


def mount_static(app: FastAPI) -> None:
    """Serve ``kernel/static`` at ``/static``."""
    app.mount("/static", _Assets(directory=STATIC_DIR), name="static")
