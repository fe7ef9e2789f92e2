"""A passkey whose user verification fails (Chromium's virtual authenticator with isUserVerified false): the
enrolment ceremony is refused, no session is created, the page says why in the citizen's language, and the
citizen can try again on the same ceremony once their screen lock works."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.pages import flows
from tests.pages.flows import tr
from tests.pages.kit import DESKTOP, PHONE, passkeys, shoot
from tests.pages.live import LiveServer

pytestmark = pytest.mark.browser


def test_enrolment_without_user_verification_is_refused(
    open_page: Callable[..., Page], server: LiveServer, camera_file: Path
) -> None:
    counter = open_page("/counter", DESKTOP, "en")
    flows.counter_sign_in(counter, server.officer_token(), "en")
    offer = flows.counter_issue(counter, "en")

    wallet = open_page("/wallet", PHONE, "zh-CN")
    cdp, auth = flows.wallet_enrol_by_camera(wallet, camera_file, offer, "zh-CN", verified=False)
    status = wallet.locator("#enrol-status")
    expect(status).to_have_attribute("data-kind", "bad")
    refusals = {tr("zh-CN", "passkey.not-allowed"), tr("zh-CN", "problem.user-verification-required")}
    assert status.inner_text().strip() in refusals
    shoot(wallet, "20-wallet-passkey-refused-zh")
    expect(wallet.locator("#home")).to_be_hidden()
    assert wallet.request.get("/wallet/me/credentials").status == 401  # no session cookie was set

    # The screen lock works now: the same ceremony goes through (the browser refused before the server saw it).
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": auth, "isUserVerified": True})
    for stale in passkeys(cdp, auth):
        cdp.send(
            "WebAuthn.removeCredential", {"authenticatorId": auth, "credentialId": stale["credentialId"]}
        )
    wallet.get_by_role("button", name=tr("zh-CN", "wallet.enrol.submit")).click()
    flows.expect_enrolled(wallet, cdp, auth)
