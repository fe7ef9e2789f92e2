"""The consent part of the story, on the wallet page: a bank files a request; the citizen opens its link,
grants part of it (the ID number with its own separate toggle, the address left out); the bank fetches the
data; the citizen shares less, pauses, resumes and withdraws; the bank's next fetch is refused; a second
request is refused outright."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.sync_api import expect

from kernel.sdjwt import parse_sd_jwt
from tests.pages.a11y import assert_accessible
from tests.pages.flows import tr
from tests.pages.kit import shoot
from tests.pages.live import LiveServer
from tests.pages.third_party import ThirdParty

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

EN = "en"


def _card(wallet: Page, consent_id: str) -> Locator:
    return wallet.locator(f'article.consent[data-id="{consent_id}"]')


def _act(wallet: Page, consent_id: str, action: str, state: str) -> Locator:
    card = _card(wallet, consent_id)
    card.get_by_role("button", name=tr(EN, f"consent.action.{action}")).click()
    expect(wallet.locator("#consent-status")).to_have_text(tr(EN, f"consent.done.{action}"))
    card = _card(wallet, consent_id)
    expect(card).to_have_attribute("data-state", state)
    return card


def _item(card: Locator, claim: str, *, required: bool) -> Locator:
    tag = tr(EN, "consent.required" if required else "consent.optional")
    return card.get_by_role("checkbox", name=f"{tr(EN, f'claim.{claim}')} {tag}", exact=True)


def _released(bank: ThirdParty, consent_id: str) -> list[str]:
    resp = bank.release(consent_id)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    disclosed = {d.name: d.value for d in parse_sd_jwt(body["presentation"]).disclosures if d.name}
    assert sorted(disclosed) == sorted(i.split(".", 1)[1] for i in body["items"])
    assert disclosed["name"] == "王小明"
    return sorted(body["items"])


def _refused(bank: ThirdParty, consent_id: str) -> str:
    resp = bank.release(consent_id)
    assert resp.status_code >= 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return str(resp.json()["type"])


def consent_story(server: LiveServer, wallet: Page) -> None:
    bank = ThirdParty.register(server)
    request = bank.request()
    consent_id = str(request["id"])
    assert request["link"] == f"{server.base_url}/wallet/consents/{consent_id}"

    wallet.goto(request["link"])  # the bank's site links the citizen here
    card = _card(wallet, consent_id)
    expect(card).to_have_attribute("data-state", "requested")
    expect(card).to_contain_text("Example Bank")
    expect(card).to_contain_text(tr(EN, "purpose.dpv:CreditChecking"))
    expect(_item(card, "name", required=True)).to_be_disabled()  # required: refuse to leave it out
    expect(_item(card, "address", required=False)).not_to_be_checked()
    _item(card, "idNumber", required=False).check()
    card.get_by_label(tr(EN, "consent.sensitive-confirm", item=tr(EN, "claim.idNumber"))).check()
    shoot(wallet, "12-wallet-consent-request-en")
    assert_accessible(wallet)
    _act(wallet, consent_id, "grant", "given")
    expect(_card(wallet, consent_id)).to_contain_text("Name, Date of birth, ID number")
    wanted = ["credentialSubject.birthDate", "credentialSubject.idNumber", "credentialSubject.name"]
    assert _released(bank, consent_id) == wanted

    card = _card(wallet, consent_id)
    _item(card, "idNumber", required=False).uncheck()
    _act(wallet, consent_id, "narrow", "given")
    assert _released(bank, consent_id) == ["credentialSubject.birthDate", "credentialSubject.name"]

    _act(wallet, consent_id, "pause", "paused")
    _refused(bank, consent_id)
    _act(wallet, consent_id, "resume", "given")
    _act(wallet, consent_id, "withdraw", "withdrawn")  # confirm() is accepted
    _refused(bank, consent_id)
    shoot(wallet, "13-wallet-consent-withdrawn-en")
    assert_accessible(wallet)

    second = str(bank.request()["id"])
    wallet.locator("#consent-open").fill(f"imi-consent:{second}")  # the QR text, pasted
    wallet.get_by_role("button", name=tr(EN, "wallet.consents.open-submit")).click()
    _act(wallet, second, "refuse", "refused")
    _refused(bank, second)
