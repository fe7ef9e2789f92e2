"""Server-rendered pages shared by every party: Jinja2 templates, the language, security headers.

Each party keeps its own templates and script next to its router (``issuer/templates/counter.html``,
``issuer/static/counter.js``); the layout (``kernel/templates/base.html``) and the shared assets under
``/static`` (``kernel.web_static``) come from here. Pages are shells: the data comes from the party's JSON API,
fetched by a small script, so the pages hold no state and no secrets. Every response carries a strict
Content-Security-Policy (scripts and styles from this origin only, no inline script), so a claim value that
slipped past escaping still could not run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from kernel.i18n import LANG_COOKIE, LANGS, messages, negotiate, translate

KERNEL_TEMPLATES: Final = Path(__file__).parent / "templates"
CSP: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cache-Control": "no-store",
}


def environment(template_dir: Path) -> Environment:
    """A template environment that finds the party's templates first, then the shared layout."""
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(template_dir), FileSystemLoader(KERNEL_TEMPLATES)]),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page_language(request: Request) -> str:
    return negotiate(
        query=request.query_params.get("lang"),
        cookie=request.cookies.get(LANG_COOKIE),
        accept_language=request.headers.get("accept-language"),
    )


def _language_links(request: Request) -> list[tuple[str, str]]:
    links = []
    for code in LANGS:
        query = {k: v for k, v in request.query_params.items() if k != "lang"} | {"lang": code}
        links.append((code, f"{request.url.path}?{urlencode(query)}"))
    return links


def render_page(
    request: Request,
    env: Environment,
    template: str,
    *,
    title_key: str,
    scripts: tuple[str, ...],
    body_class: str = "",
    data: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` in the request's language. ``data`` becomes ``data-*`` attributes of ``<body>``
    (page configuration for the script); ``?lang=`` also remembers the choice in a cookie for a year."""
    lang = page_language(request)

    def t(key: str, **values: object) -> str:
        return translate(lang, key, **values)

    html = env.get_template(template).render(
        t=t,
        lang=lang,
        messages=dict(messages(lang)),
        lang_links=_language_links(request),
        title_key=title_key,
        scripts=scripts,
        body_class=body_class,
        data=dict(data or {}),
    )
    response = HTMLResponse(html, headers=PAGE_HEADERS)
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86_400, samesite="lax", path="/")
    return response


def script(path: Path) -> FileResponse:
    """A page's own script (served by its party's router, next to its template)."""
    return FileResponse(
        path,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
