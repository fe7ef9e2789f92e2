"""The pages without a browser: message tables, language choice, templates free of untranslated text, the
routes, headers and assets. Runs everywhere (no Chromium needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kernel.errors import Unauthenticated
from kernel.i18n import LANGS, messages, negotiate, parse_accept_language
from tests.pages.live import wire_pages
from verifier.pages import kiosk_config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [*ROOT.glob("*/templates/*.html")]
SCRIPTS = [*ROOT.glob("*/static/*.js"), *ROOT.glob("kernel/static/js/*.js")]
NAMESPACES = (
    "app|camera|claim|consent|counter|field|history|kiosk|lang|list|outcome|passkey|problem|purpose|status|type"
    "|value|wallet"
)
KEY = re.compile(rf"""["']((?:{NAMESPACES})\.[A-Za-z0-9_.:+-]*[A-Za-z0-9])["']""")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def test_both_tables_have_the_same_keys_and_placeholders() -> None:
    zh, en = messages("zh-CN"), messages("en")
    assert set(zh) == set(en)
    for key in en:
        assert zh[key].strip(), key
        assert en[key].strip(), key
        assert set(PLACEHOLDER.findall(zh[key])) == set(PLACEHOLDER.findall(en[key])), key


def test_every_key_the_pages_use_exists() -> None:
    used = {m for path in TEMPLATES + SCRIPTS for m in KEY.findall(path.read_text(encoding="utf-8"))}
    used |= {"counter.title", "kiosk.title", "wallet.title", "lang.zh-CN", "lang.en"}
    assert len(used) > 150
    missing = sorted(k for k in used if k not in messages("en"))
    assert not missing, missing


class _Text(HTMLParser):
    """Collects text nodes and human-readable attributes, outside <script> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._script = tag == "script"
        for name, value in attrs:
            if name in {"alt", "aria-label", "title"} and value:
                self.found.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._script = False

    def handle_data(self, data: str) -> None:
        if not self._script and data.strip():
            self.found.append(data.strip())


@pytest.mark.parametrize("template", [*TEMPLATES, ROOT / "kernel/templates/base.html"], ids=lambda p: p.name)
def test_templates_have_no_untranslated_text(template: Path) -> None:
    source = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "", template.read_text(encoding="utf-8"), flags=re.S)
    parser = _Text()
    parser.feed(source)
    leftovers = [t for t in parser.found if re.search(r"[A-Za-z\u4e00-\u9fff]", t)]
    assert not leftovers, leftovers


@pytest.mark.parametrize(
    ("query", "cookie", "header", "expected"),
    [
        (None, None, "en-GB,en;q=0.9", "en"),
        (None, None, "zh-TW,zh;q=0.9,en;q=0.8", "zh-CN"),
        (None, None, "fr-FR,en;q=0.5", "en"),
        (None, None, "fr-FR", "zh-CN"),
        (None, None, "en;q=0.2,zh-CN;q=0.8", "zh-CN"),
        (None, None, None, "zh-CN"),
        (None, "en", "zh-CN", "en"),
        ("zh-CN", "en", "en", "zh-CN"),
        ("xx", None, "en", "en"),
    ],
)
def test_language_negotiation(
    query: str | None, cookie: str | None, header: str | None, expected: str
) -> None:
    assert negotiate(query=query, cookie=cookie, accept_language=header) == expected


def test_accept_language_parsing_skips_junk() -> None:
    assert parse_accept_language("en;q=abc, zh;q=0, fr;q=0.5, de") == [("de", 1.0), ("fr", 0.5)]


def test_kiosk_configuration_is_sanitised() -> None:
    assert kiosk_config("name,birthDate,name", "kiosk-3", "15") == {
        "claims": "name,birthDate",
        "verifier-id": "kiosk-3",
        "reset": "15",
    }
    assert kiosk_config("<script>,", 'a"b', "-4") == {"claims": "name", "verifier-id": "kiosk", "reset": "10"}
    assert kiosk_config(None, None, "9999")["reset"] == "120"


@pytest.fixture
def pages(app: FastAPI) -> Iterator[TestClient]:
    wire_pages(app)
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize("path", ["/counter", "/kiosk", "/wallet", "/wallet/consents/abcdefgh12345678"])
def test_pages_render_with_strict_headers(pages: TestClient, path: str) -> None:
    for lang in LANGS:
        resp = pages.get(path, headers={"Accept-Language": lang})
        assert resp.status_code == 200
        assert f'<html lang="{lang}">' in resp.text
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        assert resp.headers["cache-control"] == "no-store"
        assert "<script>" not in resp.text  # no inline script: only data blocks and files
    assert 'data-open-consent="abcdefgh12345678"' in pages.get("/wallet/consents/abcdefgh12345678").text


def test_language_switch_sets_a_cookie(pages: TestClient) -> None:
    resp = pages.get("/kiosk?lang=en&claims=name", headers={"Accept-Language": "zh-CN"})
    assert 'lang="en"' in resp.text
    assert "imi_lang=en" in resp.headers["set-cookie"]
    assert 'href="/kiosk?claims=name&amp;lang=zh-CN"' in resp.text


def test_claim_values_are_escaped(pages: TestClient) -> None:
    resp = pages.get("/wallet/consents/%3Cscript%3E")
    assert resp.status_code == 200
    assert 'data-open-consent=""' in resp.text


@pytest.mark.parametrize(
    "path",
    [
        "/static/js/imi.js",
        "/static/js/webauthn-json.js",
        "/static/js/outcome.js",
        "/static/vendor/jsQR.js",
        "/counter/counter.js",
        "/kiosk/kiosk.js",
        "/wallet/app/wallet.js",
        "/wallet/app/consents.js",
    ],
)
def test_scripts_are_served(pages: TestClient, path: str) -> None:
    resp = pages.get(path)
    assert resp.status_code == 200
    assert "javascript" in resp.headers["content-type"]
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_unknown_assets_are_404(pages: TestClient) -> None:
    assert pages.get("/wallet/app/../api.py").status_code == 404
    assert pages.get("/wallet/app/nope.js").status_code == 404
    assert pages.get("/static/../i18n.py").status_code == 404


def test_counter_me_needs_an_officer(pages: TestClient) -> None:
    assert pages.get("/counter/me").status_code == 401


def test_counter_signout_ends_the_staff_session(pages: TestClient) -> None:
    """Signing out revokes the ``imi_staff`` session and clears the cookie; without one it is a no-op."""
    app = pages.app
    assert isinstance(app, FastAPI)
    session = app.state.sessions.create("staff:nobody")
    pages.cookies.set("imi_staff", session)
    response = pages.post("/counter/signout")
    assert response.status_code == 204
    assert 'imi_staff=""' in response.headers["set-cookie"]
    assert "samesite=strict" in response.headers["set-cookie"].lower()
    with pytest.raises(Unauthenticated, match="not valid"):
        app.state.sessions.resolve(session)
    pages.cookies.clear()
    assert pages.post("/counter/signout").status_code == 204


def test_vendored_decoder_keeps_its_licence() -> None:
    vendor = ROOT / "kernel/static/vendor"
    assert "Apache License" in (vendor / "jsQR.LICENSE.txt").read_text()
    assert "Licensed under the Apache License" in (vendor / "jsQR.js").read_text()[:400]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (only used to syntax-check)")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script: Path) -> None:
    node = str(shutil.which("node"))
    result = subprocess.run([node, "--check", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
