"""The whole story in a real browser: counter check -> offer QR + PIN -> wallet enrolment with a passkey (by
camera) -> kiosk verification (OpenID4VP, the wallet scans the kiosk) -> the wallet's QR scanned by the kiosk's
camera -> suspension at the counter refuses the QR, reinstatement accepts it -> a third party's consent
request -> grant -> release -> withdraw -> refused release -> history, export, erasure -> revocation.

The counter and kiosk speak Chinese (Accept-Language zh-CN), the phone English. Screenshots of every page go
to tests/artifacts/pages/."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.pages import flows, flows_consent
from tests.pages.a11y import assert_accessible
from tests.pages.flows import tr
from tests.pages.kit import DESKTOP, KIOSK, PHONE, img_png, shoot, show_to_camera
from tests.pages.live import LiveServer

pytestmark = pytest.mark.browser
ZH, EN = "zh-CN", "en"


def snap(page: Page, name: str) -> None:
    """A screenshot for the artefacts, and the accessibility checks on what the screen shows now."""
    shoot(page, name)
    assert_accessible(page)


def test_the_whole_story(
    open_page: Callable[..., Page], server: LiveServer, camera_file: Path, tmp_path: Path
) -> None:
    # -- the counter: sign in, check, issue -----------------------------------------------------------------
    counter = open_page("/counter", DESKTOP, ZH)
    snap(counter, "01-counter-signin-zh")
    flows.counter_add_passkey(counter, server.officer_token(), ZH)  # first time: the token adds a passkey
    flows.counter_passkey_sign_in(counter, ZH)  # then the passkey alone
    offer = flows.counter_issue(counter, ZH, shots="02-counter-offer-zh")

    # -- the phone: scan the counter's QR, type the PIN, create a passkey ---------------------------------
    wallet = open_page("/wallet", PHONE, EN)
    wallet.clock.install()
    snap(wallet, "03-wallet-welcome-en")
    cdp, auth = flows.wallet_enrol_by_camera(wallet, camera_file, offer, EN)
    flows.expect_enrolled(wallet, cdp, auth)
    snap(wallet, "04-wallet-credentials-en")

    # -- a kiosk asks for name and date of birth; the wallet scans its QR and answers ------------------------
    kiosk = open_page("/kiosk?claims=name,birthDate&verifier_id=kiosk-1&reset=3", KIOSK, ZH)
    kiosk_png, _request = flows.kiosk_request(kiosk)
    snap(kiosk, "05-kiosk-waiting-zh")
    flows.wallet_answer_by_camera(wallet, camera_file, kiosk_png, EN, shot="06-wallet-answer-en")
    flows.expect_outcome(kiosk, "#outcome-box", verified=True, shows=("王小明", "1949-12-31"))
    expect(kiosk.locator("#outcome-box")).not_to_contain_text(flows.RESIDENT_ID)
    snap(kiosk, "07-kiosk-verified-zh")
    expect(kiosk.locator("#idle")).to_be_visible(timeout=8_000)  # reset=3: back to a fresh request
    _, again = flows.kiosk_request(kiosk)
    assert again != _request

    # -- the wallet shows a QR (name only); it refreshes itself before it goes stale ----------------------------
    qr_png, qr_text = flows.wallet_show_qr(wallet, EN)
    snap(wallet, "08-wallet-qr-en")
    wallet.clock.run_for(85_000)  # refresh_in 90 s, refreshed 10 s early
    expect(wallet.locator("#qr-img")).not_to_have_attribute("data-text", qr_text)
    qr_png, qr_text = (
        img_png(wallet, "#qr-img"),
        str(wallet.locator("#qr-img").get_attribute("data-text")),
    )

    # -- the kiosk's camera reads the wallet's QR ------------------------------------------------------------
    show_to_camera(camera_file, qr_png)
    kiosk.get_by_role("button", name=tr(ZH, "kiosk.camera.start")).click()
    flows.expect_outcome(kiosk, "#outcome-box", verified=True, shows=("王小明",))
    expect(kiosk.locator("#outcome-box")).not_to_contain_text("1949-12-31")
    snap(kiosk, "09-kiosk-camera-verified-zh")

    # -- the counter suspends the credential: the next QR is refused; reinstated, it verifies again -----------
    # the counter already lists the credential issued from its check (polled after the offer); no id typed
    expect(counter.locator("#issued-list li")).to_have_count(1)
    flows.counter_open_issued(counter, ZH)
    expect(counter.locator("#state-list")).to_have_attribute("data-status", "active")
    flows.counter_status(counter, ZH, "suspend", "手机遗失")
    expect(counter.locator("#state-list")).to_have_attribute("data-status", "suspended")
    expect(counter.locator("#issued-list li")).to_contain_text(tr(ZH, "status.suspended"))
    server.clock.advance(61)  # the kiosks' cached status list (max-age 60 s) goes stale
    flows.counter_verify(counter, ZH, flows.wallet_show_qr(wallet, EN)[1])
    flows.expect_outcome(
        counter, "#verify-result", verified=False, shows=(tr(ZH, "problem.credential-suspended"),)
    )
    snap(counter, "10-counter-suspended-refused-zh")
    flows.counter_status(counter, ZH, "reinstate")
    server.clock.advance(61)
    # this time the counter's camera reads the wallet's QR
    show_to_camera(camera_file, flows.wallet_show_qr(wallet, EN)[0])
    counter.locator("#verify").get_by_role("button", name=tr(ZH, "camera.scan")).click()
    flows.expect_outcome(counter, "#verify-result", verified=True, shows=("王小明",))
    snap(counter, "11-counter-reinstated-verified-zh")

    # -- a third party's consent request: grant, release, withdraw, refused release ---------------------------
    flows_consent.consent_story(server, wallet)

    # -- the citizen's history, export, erasure ----------------------------------------------------------------
    flows.wallet_tab(wallet, EN, "wallet.tab.history")
    expect(wallet.locator("#history-list li").first).to_be_visible()
    expect(wallet.locator("#history-list")).to_contain_text("Name, Date of birth")
    snap(wallet, "14-wallet-history-en")
    flows.wallet_tab(wallet, EN, "wallet.tab.account")
    with wallet.expect_download() as download:
        wallet.get_by_role("link", name=tr(EN, "wallet.account.export")).click()
    exported = json.loads(Path(str(download.value.path())).read_text())
    assert exported["credentials"][0]["claims"]["idNumber"] == flows.RESIDENT_ID
    assert "pkcs8" not in json.dumps(exported)
    snap(wallet, "15-wallet-account-en")
    wallet.get_by_role("button", name=tr(EN, "wallet.account.erase")).click()  # confirm() is accepted
    expect(wallet.locator("#signed-out")).to_be_visible()
    expect(wallet.locator("#login-status")).to_have_attribute("data-kind", "ok")
    snap(wallet, "16-wallet-erased-en")
    assert wallet.request.get("/wallet/me/credentials").status == 401

    # -- finally the counter revokes the credential for good ---------------------------------------------------
    counter.get_by_role("button", name=tr(ZH, "counter.manage.search")).click()
    flows.counter_status(counter, ZH, "revoke", "注销")
    expect(counter.locator("#state-list")).to_have_attribute("data-status", "revoked")
    expect(counter.locator("#act-reinstate")).to_be_hidden()
    snap(counter, "17-counter-revoked-zh")
