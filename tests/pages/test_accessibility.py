"""Every page in both languages: the language from Accept-Language, the switch (remembered in a cookie),
the accessibility checks of ``a11y.py``, keyboard use (skip link, focus order), and the wallet at 360 px."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.pages import flows
from tests.pages.a11y import assert_accessible
from tests.pages.flows import tr
from tests.pages.kit import DESKTOP, KIOSK, PHONE, shoot
from tests.pages.live import LiveServer

pytestmark = pytest.mark.browser
DATA_URL = re.compile(r"^data:image/png;base64,")
PAGES: list[tuple[str, dict[str, Any], str]] = [
    ("/counter", DESKTOP, "counter.signin.title"),
    ("/kiosk", KIOSK, "kiosk.idle.title"),
    ("/wallet", PHONE, "wallet.welcome.title"),
]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_pages_in_both_languages_are_accessible(
    open_page: Callable[..., Page], server: LiveServer, lang: str
) -> None:
    del server
    for path, device, heading in PAGES:
        page = open_page(path, device, lang)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.get_by_role("heading", level=1)).to_have_text(tr(lang, heading))
        if path == "/kiosk":
            expect(page.locator("#kiosk-qr")).to_have_attribute("src", DATA_URL)
        assert_accessible(page)
        shoot(page, f"00-{path.strip('/')}-{lang}")


def test_language_switch_is_remembered(open_page: Callable[..., Page], server: LiveServer) -> None:
    del server
    page = open_page("/kiosk?claims=name,birthDate", KIOSK, "en")
    expect(page.locator("#asked-claims")).to_have_text("Name, Date of birth")
    page.get_by_role("link", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    # the kiosk's settings survive the switch
    expect(page.locator("#asked-claims")).to_have_text("姓名、出生日期")
    page.goto("/wallet")  # no ?lang: the cookie wins over Accept-Language
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


def test_keyboard_only(open_page: Callable[..., Page], server: LiveServer) -> None:
    """The skip link comes first and moves focus to the content; every control is reachable with Tab."""
    page = open_page("/wallet", PHONE, "en")
    expect(page.locator("#signed-out")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name=tr("en", "app.skip"))).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    seen = []
    for _ in range(8):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert seen[:5] == ["login", "offer", "offer-camera", "pin", tr("en", "wallet.enrol.submit")], seen
    counter = open_page("/counter", DESKTOP, "en")
    flows.counter_add_passkey(counter, server.officer_token(), "en")  # keyboard only: token, Enter
    expect(counter.get_by_label(tr("en", "field.name"), exact=True)).to_be_focused()
    assert_accessible(counter)
    shoot(counter, "00-counter-desk-en")
