"""Steps of the story, as a person does them on the pages (counter, wallet, kiosk). Each returns what the
next step needs; each takes its screenshots. Labels and button names come from the message tables, so the
steps also prove that every control has its translated accessible name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.sync_api import expect

from kernel.i18n import messages, translate
from tests.pages.a11y import assert_accessible
from tests.pages.kit import authenticator, img_png, passkeys, read_qr, shoot, show_to_camera

if TYPE_CHECKING:
    from playwright.sync_api import CDPSession, Locator, Page

RESIDENT_ID = "11010519491231002X"  # GB 11643-1999 Appendix A example: born 1949-12-31, female


def tr(lang: str, key: str, **values: object) -> str:
    """The text a page shows for ``key`` (failing on a missing key, unlike the pages' fallback)."""
    assert key in messages(lang), key
    return translate(lang, key, **values)


@dataclass
class Offer:
    check_id: str
    png: bytes
    text: str
    pin: str


def counter_add_passkey(counter: Page, token: str, lang: str) -> tuple[CDPSession, str]:
    """First time at this computer, keyboard only: type the token from ``imi admin token``, press Enter; the
    page adds a passkey to the officer's account (this page's own virtual authenticator) and signs in with it.
    The token is not kept: nothing in sessionStorage, the session is the HttpOnly ``imi_staff`` cookie."""
    cdp, auth = authenticator(counter)
    field = counter.get_by_label(tr(lang, "counter.first.token"))
    field.focus()
    counter.keyboard.type(token)
    counter.keyboard.press("Enter")
    expect(counter.locator("#desk")).to_be_visible()
    expect(field).to_have_value("")
    stored = passkeys(cdp, auth)
    assert len(stored) == 1
    assert stored[0]["isResidentCredential"]
    assert counter.evaluate("() => sessionStorage.length") == 0
    (cookie,) = [c for c in counter.context.cookies() if c["name"] == "imi_staff"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    return cdp, auth


def counter_passkey_sign_in(counter: Page, lang: str) -> None:
    """Sign out, then sign in with the passkey alone (the button, by keyboard)."""
    with counter.expect_navigation():  # the page reloads once the session is ended
        counter.get_by_role("button", name=tr(lang, "counter.signout")).click()
    expect(counter.locator("#signin")).to_be_visible()
    assert not [c for c in counter.context.cookies() if c["name"] == "imi_staff"]
    button = counter.get_by_role("button", name=tr(lang, "counter.signin.passkey"))
    button.focus()
    counter.keyboard.press("Enter")
    expect(counter.locator("#desk")).to_be_visible()
    expect(counter.get_by_label(tr(lang, "field.name"), exact=True)).to_be_focused()


def counter_sign_in(counter: Page, token: str, lang: str) -> None:
    """The officer's first visit: add a passkey with the token, then sign in with the passkey alone."""
    counter_add_passkey(counter, token, lang)
    counter_passkey_sign_in(counter, lang)


def counter_issue(counter: Page, lang: str, *, shots: str | None = None) -> Offer:
    """Record a passed real-name check, then issue the offer; read the QR back with ZXing."""

    def label(key: str) -> Locator:
        return counter.get_by_label(tr(lang, key), exact=True)

    label("field.name").fill("王小明")
    label("field.document_number").fill(RESIDENT_ID)
    label("field.birth_date").fill("1949-12-31")
    label("field.sex").select_option("F")
    label("field.address").fill("北京市东城区景山前街4号")
    label("field.counter").fill("district-3/counter-7")
    counter.get_by_role("button", name=tr(lang, "counter.check.submit")).click()
    status = counter.locator("#check-status")
    expect(status).to_have_attribute("data-kind", "ok")
    check_id = str(status.get_attribute("data-check-id"))
    counter.get_by_role("button", name=tr(lang, "counter.offer.submit")).click()
    png = img_png(counter, "#offer-qr")
    pin = counter.locator("#offer-pin").inner_text().strip()
    assert pin.isdigit()
    if shots:
        shoot(counter, shots)
        assert_accessible(counter)
    text = read_qr(png)
    assert text.startswith("openid-credential-offer://"), text[:40]
    return Offer(check_id, png, text, pin)


def counter_open_issued(counter: Page, lang: str) -> str:
    """Once the citizen's wallet has collected the offer, the counter lists the credential issued from the
    check (it polls; "Refresh" asks at once); "Open" shows its status. Returns the credential id."""
    counter.locator("#issued").get_by_role("button", name=tr(lang, "counter.issued.refresh")).click()
    item = counter.locator("#issued-list li")
    expect(item).to_have_count(1)
    expect(counter.locator("#issued-status")).to_have_attribute("data-kind", "ok")
    item.get_by_role("button", name=tr(lang, "counter.issued.open")).click()
    expect(counter.locator("#state-list")).to_be_visible()
    expect(counter.get_by_label(tr(lang, "field.reason"))).to_be_focused()
    credential_id = counter.get_by_label(tr(lang, "field.credential_id")).input_value()
    assert credential_id.startswith("urn:uuid:"), credential_id
    expect(item).to_contain_text(credential_id)
    return credential_id


def wallet_enrol_by_camera(
    wallet: Page, camera: Path, offer: Offer, lang: str, *, verified: bool = True
) -> tuple[CDPSession, str]:
    """Scan the counter's QR with the phone's camera, type the PIN, create the passkey."""
    cdp, auth = authenticator(wallet, verified=verified)
    show_to_camera(camera, offer.png)
    wallet.locator("#enrol").get_by_role("button", name=tr(lang, "camera.scan")).click()
    expect(wallet.get_by_label(tr(lang, "wallet.enrol.offer"))).to_have_value(offer.text)
    wallet.get_by_label(tr(lang, "wallet.enrol.pin")).fill(offer.pin)
    wallet.get_by_role("button", name=tr(lang, "wallet.enrol.submit")).click()
    return cdp, auth


def expect_enrolled(wallet: Page, cdp: CDPSession, auth: str) -> None:
    expect(wallet.locator("#home")).to_be_visible()
    expect(wallet.locator("#cred-list")).to_contain_text("王小明")
    stored = passkeys(cdp, auth)
    assert len(stored) == 1
    assert stored[0]["isResidentCredential"]
    assert stored[0]["rpId"] == "localhost"


def wallet_tab(wallet: Page, lang: str, key: str) -> None:
    wallet.locator(".tabs").get_by_role("button", name=tr(lang, key)).click()


def kiosk_request(kiosk: Page) -> tuple[bytes, str]:
    png = img_png(kiosk, "#kiosk-qr")
    text = read_qr(png)
    assert text.startswith("openid4vp://"), text[:40]
    return png, text


def wallet_answer_by_camera(wallet: Page, camera: Path, kiosk_png: bytes, lang: str, *, shot: str) -> None:
    """Scan the kiosk's request with the camera, look at what it asks, send it."""
    wallet_tab(wallet, lang, "wallet.tab.answer")
    show_to_camera(camera, kiosk_png)
    wallet.locator("#tab-answer").get_by_role("button", name=tr(lang, "camera.scan")).click()
    expect(wallet.locator("#vp-request")).to_be_visible()
    for claim in ("claim.name", "claim.birthDate"):
        expect(wallet.get_by_label(tr(lang, claim), exact=True)).to_be_checked()
    shoot(wallet, shot)
    assert_accessible(wallet)
    wallet.get_by_role("button", name=tr(lang, "wallet.answer.send")).click()
    expect(wallet.locator("#vp-status")).to_have_attribute("data-kind", "ok")


def expect_outcome(page: Page, box: str, *, verified: bool, shows: tuple[str, ...] = ()) -> None:
    outcome = page.locator(box)
    expect(outcome).to_be_visible()
    expect(outcome).to_have_attribute("data-kind", "ok" if verified else "bad")
    for text in shows:
        expect(outcome).to_contain_text(text)


def wallet_show_qr(
    wallet: Page, lang: str, claims: tuple[str, ...] = ("name",), form: str = "compact"
) -> tuple[bytes, str]:
    """Choose what to disclose on the first credential and the kind of code, show its QR; (png, text)."""
    wallet_tab(wallet, lang, "wallet.tab.creds")
    card = wallet.locator("article.cred").first
    for box in card.locator("input[type=checkbox]").all():
        value = str(box.get_attribute("value"))
        box.set_checked(value in claims)
    card.get_by_label(tr(lang, "wallet.qr.form")).select_option(form)
    previous = wallet.locator("#qr-img").get_attribute("data-text")
    card.get_by_role("button", name=tr(lang, "wallet.qr.show")).click()
    expect(wallet.locator("#qr-box")).to_be_visible()
    if previous:
        expect(wallet.locator("#qr-img")).not_to_have_attribute("data-text", previous)
    png = img_png(wallet, "#qr-img")
    text = read_qr(png)
    assert text == wallet.locator("#qr-img").get_attribute("data-text")
    return png, text


def counter_status(counter: Page, lang: str, action: str, reason: str = "") -> None:
    counter.get_by_label(tr(lang, "field.reason")).fill(reason)
    counter.get_by_role("button", name=tr(lang, f"counter.manage.{action}"), exact=True).click()
    expect(counter.locator("#manage-status")).to_have_text(tr(lang, f"counter.manage.done-{action}"))


def counter_verify(counter: Page, lang: str, text: str) -> None:
    counter.get_by_label(tr(lang, "counter.verify.text")).fill(text)
    counter.get_by_role("button", name=tr(lang, "counter.verify.submit"), exact=True).click()
