"""A citizen's second visit: sign in with the passkey (a discoverable credential), answer a kiosk by pasting
its openid4vp:// text, show a short reference QR to the kiosk's camera, export the data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.pages import flows
from tests.pages.flows import tr
from tests.pages.kit import DESKTOP, KIOSK, PHONE, passkeys, shoot, show_to_camera
from tests.pages.live import LiveServer

pytestmark = pytest.mark.browser
EN = "en"


def test_second_visit(open_page: Callable[..., Page], server: LiveServer, camera_file: Path) -> None:
    counter = open_page("/counter", DESKTOP, EN)
    flows.counter_sign_in(counter, server.officer_token(), EN)
    offer = flows.counter_issue(counter, EN)
    wallet = open_page("/wallet", PHONE, EN)
    cdp, auth = flows.wallet_enrol_by_camera(wallet, camera_file, offer, EN)
    flows.expect_enrolled(wallet, cdp, auth)

    flows.wallet_tab(wallet, EN, "wallet.tab.account")
    wallet.get_by_role("button", name=tr(EN, "wallet.account.logout")).click()
    expect(wallet.locator("#signed-out")).to_be_visible()
    wallet.get_by_role("button", name=tr(EN, "wallet.login.submit")).click()  # no user name: a resident key
    expect(wallet.locator("#cred-list")).to_contain_text("王小明")
    assert passkeys(cdp, auth)[0]["signCount"] >= 1

    kiosk = open_page("/kiosk?claims=name,birthDate&reset=30", KIOSK, EN)
    _, request = flows.kiosk_request(kiosk)
    flows.wallet_tab(wallet, EN, "wallet.tab.answer")
    wallet.get_by_label(tr(EN, "wallet.answer.text")).fill(request)
    wallet.get_by_role("button", name=tr(EN, "wallet.answer.read")).click()
    expect(wallet.locator("#vp-who")).to_contain_text(server.base_url.removeprefix("http://"))
    wallet.get_by_label(tr(EN, "claim.birthDate"), exact=True).uncheck()  # the citizen shares less
    wallet.get_by_role("button", name=tr(EN, "wallet.answer.send")).click()
    flows.expect_outcome(kiosk, "#outcome-box", verified=True, shows=("王小明",))
    expect(kiosk.locator("#outcome-box")).not_to_contain_text("1949-12-31")
    shoot(kiosk, "18-kiosk-verified-en")

    kiosk.get_by_role("button", name=tr(EN, "kiosk.outcome.done")).click()
    png, text = flows.wallet_show_qr(wallet, EN, ("name", "birthDate"), form="reference")
    assert text.startswith("IMI2:"), text[:10]
    shoot(wallet, "19-wallet-short-qr-en")
    show_to_camera(camera_file, png)
    kiosk.get_by_role("button", name=tr(EN, "kiosk.camera.start")).click()
    flows.expect_outcome(kiosk, "#outcome-box", verified=True, shows=("王小明", "1949-12-31"))

    flows.wallet_tab(wallet, EN, "wallet.tab.account")
    exported = wallet.request.get("/wallet/me/export")
    assert exported.status == 200, exported.text()
    with wallet.expect_download():
        wallet.get_by_role("link", name=tr(EN, "wallet.account.export")).click()
    expect(wallet.locator("#account-status")).to_have_attribute("data-kind", "ok")
