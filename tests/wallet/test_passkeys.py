"""Passkey enrolment and login (W3C WebAuthn L3 §7.1, §7.2) and citizens' sessions, against a real database.

The browser and the authenticator are played by ``SoftAuthenticator``; py_webauthn verifies what it produces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from imi.migrate import upgrade
from kernel.auth_tables import Passkey, WalletSession
from kernel.db import make_engine
from kernel.errors import Conflict, ImiError, MalformedInput, NotFound, Unauthenticated, VerificationFailed
from kernel.passkeys import CEREMONY_TTL, PasskeyInfo, PasskeyService
from kernel.sessions import SessionService
from tests.wallet.soft_authenticator import InvalidStateError, SoftAuthenticator, unb64url

RP_ID = "wallet.imi.test"
ORIGIN = "https://wallet.imi.test"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(engine: Engine, clock: Clock) -> PasskeyService:
    return PasskeyService(engine, rp_id=RP_ID, rp_name="IMI", origin=ORIGIN, clock=clock)


@pytest.fixture
def sessions(engine: Engine, clock: Clock) -> SessionService:
    return SessionService(engine, clock=clock)


@pytest.fixture
def auth() -> SoftAuthenticator:
    return SoftAuthenticator(RP_ID, ORIGIN)


@contextmanager
def refused(error: type[ImiError], slug: str) -> Iterator[None]:
    with pytest.raises(error) as info:
        yield
    assert info.value.slug == slug, info.value.detail


def enrol(service: PasskeyService, auth: SoftAuthenticator, citizen: str = "citizen-a") -> PasskeyInfo:
    ceremony, options = service.registration_options(citizen_id=citizen, user_name="imi-x", display_name="X")
    return service.finish_registration(ceremony_id=ceremony, credential=auth.create(options), label="phone")


def login(service: PasskeyService, auth: SoftAuthenticator, citizen: str | None = None) -> str:
    ceremony, options = service.authentication_options(citizen_id=citizen)
    return service.finish_authentication(ceremony_id=ceremony, credential=auth.get(options))


# -- registration and login ----------------------------------------------------------------------------------


def test_register_then_login(service: PasskeyService, auth: SoftAuthenticator, clock: Clock) -> None:
    _, options = service.registration_options(
        citizen_id="citizen-a", user_name="imi-a", display_name="Li Lei"
    )
    assert options["rp"] == {"id": RP_ID, "name": "IMI"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8]
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []
    assert options["timeout"] == CEREMONY_TTL.total_seconds() * 1000

    info = enrol(service, auth)
    assert (info.label, info.last_used_at, info.transports) == ("phone", None, ("hybrid", "internal"))
    assert info.created_at == clock.now

    clock.advance(timedelta(minutes=1))
    _, request = service.authentication_options()
    assert request["allowCredentials"] == []  # discoverable login: the authenticator names the account
    assert request["userVerification"] == "required"
    assert login(service, auth) == "citizen-a"
    assert service.list_passkeys("citizen-a")[0].last_used_at == clock.now


def test_login_for_a_known_citizen_lists_their_credentials(
    service: PasskeyService, auth: SoftAuthenticator
) -> None:
    enrol(service, auth)
    _, request = service.authentication_options(citizen_id="citizen-a")
    assert [unb64url(d["id"]) for d in request["allowCredentials"]] == list(auth.credentials)
    assert login(service, auth, "citizen-a") == "citizen-a"


def test_registration_without_user_verification_is_refused(service: PasskeyService, engine: Engine) -> None:
    with refused(VerificationFailed, "user-verification-required"):
        enrol(service, SoftAuthenticator(RP_ID, ORIGIN, user_verified=False))
    with Session(engine) as s:
        assert s.exec(select(Passkey)).all() == []


def test_login_without_user_verification_is_refused(service: PasskeyService, auth: SoftAuthenticator) -> None:
    enrol(service, auth)
    auth.user_verified = False
    with refused(VerificationFailed, "user-verification-required"):
        login(service, auth)


def test_a_ceremony_works_once(service: PasskeyService, auth: SoftAuthenticator) -> None:
    ceremony, options = service.registration_options(citizen_id="citizen-a", user_name="a", display_name="A")
    response = auth.create(options)
    service.finish_registration(ceremony_id=ceremony, credential=response)
    with refused(Conflict, "ceremony-used"):
        service.finish_registration(ceremony_id=ceremony, credential=response)

    ceremony, request = service.authentication_options()
    assertion = auth.get(request)
    service.finish_authentication(ceremony_id=ceremony, credential=assertion)
    with refused(Conflict, "ceremony-used"):
        service.finish_authentication(ceremony_id=ceremony, credential=assertion)


def test_a_failed_attempt_uses_the_ceremony_up(service: PasskeyService, auth: SoftAuthenticator) -> None:
    ceremony, options = service.registration_options(citizen_id="citizen-a", user_name="a", display_name="A")
    with refused(VerificationFailed, "passkey-registration-failed"):
        service.finish_registration(ceremony_id=ceremony, credential={"id": "garbage"})
    with refused(Conflict, "ceremony-used"):
        service.finish_registration(ceremony_id=ceremony, credential=auth.create(options))


def test_expired_ceremonies(service: PasskeyService, auth: SoftAuthenticator, clock: Clock) -> None:
    ceremony, options = service.registration_options(citizen_id="citizen-a", user_name="a", display_name="A")
    clock.advance(CEREMONY_TTL)
    with refused(Conflict, "ceremony-expired"):
        service.finish_registration(ceremony_id=ceremony, credential=auth.create(options))

    enrol(service, auth)
    ceremony, request = service.authentication_options()
    clock.advance(CEREMONY_TTL + timedelta(seconds=1))
    with refused(Conflict, "ceremony-expired"):
        service.finish_authentication(ceremony_id=ceremony, credential=auth.get(request))


def test_unknown_or_misused_ceremonies(service: PasskeyService, auth: SoftAuthenticator) -> None:
    with refused(NotFound, "ceremony-unknown"):
        service.finish_authentication(ceremony_id="nope", credential={})
    login_ceremony, _ = service.authentication_options()
    with refused(NotFound, "ceremony-unknown"):  # a login challenge cannot enrol a passkey
        service.finish_registration(ceremony_id=login_ceremony, credential={})
    ceremony, options = service.registration_options(citizen_id="citizen-a", user_name="a", display_name="A")
    with refused(NotFound, "ceremony-unknown"):  # a signed-in citizen cannot finish someone else's ceremony
        service.finish_registration(
            ceremony_id=ceremony, credential=auth.create(options), expected_citizen_id="citizen-b"
        )


def test_wrong_origin(service: PasskeyService, auth: SoftAuthenticator) -> None:
    phishing = SoftAuthenticator(RP_ID, "https://wallet-imi.example")
    ceremony, options = service.registration_options(citizen_id="citizen-a", user_name="a", display_name="A")
    with pytest.raises(VerificationFailed, match="origin") as info:
        service.finish_registration(ceremony_id=ceremony, credential=phishing.create(options))
    assert info.value.slug == "passkey-registration-failed"

    enrol(service, auth)
    phishing.credentials = auth.credentials  # a page on another origin relays our challenge to the citizen
    with refused(VerificationFailed, "passkey-authentication-failed"):
        login(service, phishing)


def test_wrong_rp_id(service: PasskeyService, auth: SoftAuthenticator) -> None:
    other = SoftAuthenticator("evil.example", ORIGIN)
    ceremony, options = service.registration_options(citizen_id="citizen-a", user_name="a", display_name="A")
    with pytest.raises(VerificationFailed, match="RP ID") as info:
        service.finish_registration(ceremony_id=ceremony, credential=other.create(options))
    assert info.value.slug == "passkey-registration-failed"

    enrol(service, auth)
    other.credentials = {k: replace(c, rp_id="evil.example") for k, c in auth.credentials.items()}
    with refused(VerificationFailed, "passkey-authentication-failed"):
        login(service, other)


def test_malformed_assertion(service: PasskeyService) -> None:
    ceremony, _ = service.authentication_options()
    with refused(VerificationFailed, "passkey-authentication-failed"):
        service.finish_authentication(ceremony_id=ceremony, credential={"id": "x", "rawId": 3})


def test_unknown_passkey(service: PasskeyService, auth: SoftAuthenticator) -> None:
    stranger = SoftAuthenticator(RP_ID, ORIGIN)
    enrol(service, auth)
    stranger.credentials = {k: replace(c, credential_id=b"x" * 32) for k, c in auth.credentials.items()}
    with refused(Unauthenticated, "passkey-unknown"):
        login(service, stranger)


def test_a_credential_id_is_registered_once(service: PasskeyService, auth: SoftAuthenticator) -> None:
    first = enrol(service, auth)
    ceremony, options = service.registration_options(citizen_id="citizen-b", user_name="b", display_name="B")
    reused = SoftAuthenticator(RP_ID, ORIGIN).create(options, credential_id=next(iter(auth.credentials)))
    with refused(Conflict, "passkey-exists"):
        service.finish_registration(ceremony_id=ceremony, credential=reused)
    assert service.list_passkeys("citizen-a") == [first]
    assert service.list_passkeys("citizen-b") == []


def test_login_checks_the_account(service: PasskeyService, auth: SoftAuthenticator) -> None:
    enrol(service, auth, "citizen-a")
    enrol(service, SoftAuthenticator(RP_ID, ORIGIN), "citizen-b")
    ceremony, request = service.authentication_options(citizen_id="citizen-b")
    assertion = auth.get({**request, "allowCredentials": []})
    with pytest.raises(VerificationFailed, match="not one of those asked for"):  # §7.2 allowCredentials
        service.finish_authentication(ceremony_id=ceremony, credential=assertion)
    # §7.2: a discoverable login must return the user handle, and the credential's own
    for handle, why in ((None, "must return its user handle"), ("AAAA", "does not match")):
        ceremony, request = service.authentication_options()
        assertion = auth.get(request)
        assertion["response"]["userHandle"] = handle  # not covered by the signature
        with pytest.raises(VerificationFailed, match=why) as info:
            service.finish_authentication(ceremony_id=ceremony, credential=assertion)
        assert info.value.slug == "passkey-authentication-failed"
    assert login(service, auth, "citizen-a") == "citizen-a"  # the same passkey is fine for its own account


# -- several passkeys per citizen ----------------------------------------------------------------------------


def test_a_second_passkey(service: PasskeyService, auth: SoftAuthenticator, clock: Clock) -> None:
    first = enrol(service, auth)
    clock.advance(timedelta(days=1))  # listed oldest first
    ceremony, options = service.registration_options(citizen_id="citizen-a", user_name="a", display_name="A")
    assert [unb64url(d["id"]) for d in options["excludeCredentials"]] == list(auth.credentials)
    with pytest.raises(InvalidStateError):  # the same authenticator cannot enrol twice (§6.3.2)
        auth.create(options)
    tablet = SoftAuthenticator(RP_ID, ORIGIN)
    second = service.finish_registration(
        ceremony_id=ceremony, credential=tablet.create(options), label="tablet"
    )
    assert [p.id for p in service.list_passkeys("citizen-a")] == [first.id, second.id]
    assert login(service, auth) == login(service, tablet) == "citizen-a"
    handles = {c.user_handle for c in [*auth.credentials.values(), *tablet.credentials.values()]}
    assert len(handles) == 1  # one user handle per citizen (§5.4.3)


def test_remove_one_but_never_the_last(service: PasskeyService, auth: SoftAuthenticator) -> None:
    first = enrol(service, auth)
    tablet = SoftAuthenticator(RP_ID, ORIGIN)
    second = enrol(service, tablet)
    service.remove_passkey("citizen-a", first.id)
    assert service.list_passkeys("citizen-a") == [second]
    with refused(Unauthenticated, "passkey-unknown"):
        login(service, auth)
    with refused(Conflict, "last-passkey"):
        service.remove_passkey("citizen-a", second.id)
    assert login(service, tablet) == "citizen-a"


def test_a_citizen_cannot_touch_anothers_passkeys(service: PasskeyService, auth: SoftAuthenticator) -> None:
    theirs = enrol(service, auth, "citizen-b")
    enrol(service, SoftAuthenticator(RP_ID, ORIGIN), "citizen-b")
    enrol(service, SoftAuthenticator(RP_ID, ORIGIN), "citizen-a")
    with refused(NotFound, "passkey-not-found"):
        service.remove_passkey("citizen-a", theirs.id)
    with refused(NotFound, "passkey-not-found"):
        service.remove_passkey("citizen-a", "no-such-id")
    assert len(service.list_passkeys("citizen-b")) == 2


def test_remove_all_for_erasure(service: PasskeyService, auth: SoftAuthenticator) -> None:
    enrol(service, auth)
    enrol(service, SoftAuthenticator(RP_ID, ORIGIN))
    enrol(service, SoftAuthenticator(RP_ID, ORIGIN), "citizen-b")
    assert service.remove_all("citizen-a") == 2
    assert service.list_passkeys("citizen-a") == []
    assert len(service.list_passkeys("citizen-b")) == 1
    with refused(Unauthenticated, "passkey-unknown"):
        login(service, auth)


def test_label_length(service: PasskeyService, auth: SoftAuthenticator) -> None:
    ceremony, options = service.registration_options(citizen_id="citizen-a", user_name="a", display_name="A")
    with refused(MalformedInput, "passkey-label-too-long"):
        service.finish_registration(ceremony_id=ceremony, credential=auth.create(options), label="x" * 101)


# -- signature counter (§6.1.1) ------------------------------------------------------------------------------


def test_sign_count(service: PasskeyService, auth: SoftAuthenticator, engine: Engine) -> None:
    enrol(service, auth)
    login(service, auth)
    login(service, auth)
    with Session(engine) as s:
        assert s.exec(select(Passkey.sign_count)).one() == 2
    (cred,) = auth.credentials.values()
    cred.sign_count = 1  # a clone that lags behind: the next assertion carries 2, not above the stored 2
    with pytest.raises(VerificationFailed, match="sign count") as info:
        login(service, auth)
    assert info.value.slug == "passkey-authentication-failed"


def test_authenticators_without_a_counter(service: PasskeyService) -> None:
    synced = SoftAuthenticator(RP_ID, ORIGIN, counter_step=0)  # like synced passkeys: always 0
    enrol(service, synced)
    assert login(service, synced) == login(service, synced) == "citizen-a"


# -- sessions -------------------------------------------------------------------------------------------------


def test_session_lifecycle(sessions: SessionService, clock: Clock, engine: Engine) -> None:
    token = sessions.create("citizen-a")
    with Session(engine) as s:
        (row,) = s.exec(select(WalletSession)).all()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()  # only the hash is kept
    assert sessions.resolve(token) == "citizen-a"
    clock.advance(timedelta(minutes=14, seconds=59))
    assert sessions.resolve(token) == "citizen-a"  # using it does not extend it
    clock.advance(timedelta(seconds=1))
    with refused(Unauthenticated, "session-expired"):
        sessions.resolve(token)


def test_session_revocation(sessions: SessionService) -> None:
    one, two, other = sessions.create("citizen-a"), sessions.create("citizen-a"), sessions.create("citizen-b")
    sessions.revoke(one)
    sessions.revoke(one)  # logout twice is fine
    with refused(Unauthenticated, "session-invalid"):
        sessions.resolve(one)
    assert sessions.revoke_all("citizen-a") == 1
    with refused(Unauthenticated, "session-invalid"):
        sessions.resolve(two)
    assert sessions.resolve(other) == "citizen-b"


@pytest.mark.parametrize("token", ["", "imiw_unknown", "Bearer x", "imiw_" + "x" * 300])
def test_unknown_sessions(sessions: SessionService, token: str) -> None:
    with refused(Unauthenticated, "session-invalid"):
        sessions.resolve(token)


def test_purge_expired_sessions(sessions: SessionService, clock: Clock) -> None:
    old = sessions.create("citizen-a")
    clock.advance(timedelta(days=2))
    fresh = sessions.create("citizen-a")
    assert sessions.purge_expired() == 1
    with refused(Unauthenticated, "session-invalid"):
        sessions.resolve(old)
    assert sessions.resolve(fresh) == "citizen-a"
