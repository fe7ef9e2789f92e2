"""The pure consent rules: the transition table, fair-use checks, grants, narrowing, windows, the event chain."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.errors import Conflict, Forbidden, ImiError, MalformedInput, RateLimited, VerificationFailed
from wallet_api.consent_rules import (
    GENESIS,
    LIVE,
    TERMINAL,
    TRANSITIONS,
    Action,
    ConsentState,
    EventKind,
    Window,
    effective_frequency,
    event_body,
    link,
    pairwise_subject,
    release_refusal,
    take_release,
    transition,
    verify_chain,
)
from wallet_api.consent_terms import (
    Frequency,
    Grant,
    Item,
    Period,
    PurposeLimits,
    Terms,
    check_grant,
    claim_key,
    narrow,
    validate_request,
)

NAME, BIRTH, IDN, ADDR = (
    claim_key(["credentialSubject", c]) for c in ("name", "birthDate", "idNumber", "address")
)
TERMS = Terms(
    purpose="dpv:CreditChecking",
    items=(
        Item(NAME, True, False),
        Item(BIRTH, True, False),
        Item(IDN, False, False),
        Item(ADDR, False, False),
    ),
    recipients=("bank",),
    validity_days=30,
    frequency=Frequency(10, Period.DAY),
    retention_days=7,
    one_time=False,
    credential_type="RealNameIdentityCredential",
)
NARROWING_REFUSALS = {
    "narrowing-widens",
    "narrowing-noop",
    "consent-items-empty",
    "consent-required-item-missing",
}
LIMITS = PurposeLimits("dpv:CreditChecking", "dpv:Consent", 365, Frequency(100, Period.DAY), 30)


def test_transition_table_shape() -> None:
    assert {
        ConsentState.WITHDRAWN,
        ConsentState.REVOKED,
        ConsentState.EXPIRED,
        ConsentState.CONSUMED,
    } <= TERMINAL
    assert {ConsentState.SUPERSEDED, ConsentState.REFUSED} <= TERMINAL
    assert not (TERMINAL & LIVE)
    assert transition(ConsentState.REQUESTED, Action.GRANT) is ConsentState.GIVEN
    assert transition(ConsentState.GIVEN, Action.PAUSE) is ConsentState.PAUSED
    assert transition(ConsentState.PAUSED, Action.RESUME) is ConsentState.GIVEN
    assert transition(ConsentState.GIVEN, Action.NARROW) is ConsentState.SUPERSEDED
    assert transition(ConsentState.GIVEN, Action.CONSUME) is ConsentState.CONSUMED
    with pytest.raises(Conflict):
        transition(
            ConsentState.PAUSED, Action.CONSUME
        )  # a paused consent releases nothing, so nothing is consumed


@given(st.sampled_from(list(ConsentState)), st.sampled_from(list(Action)))
def test_transitions_are_the_table_and_nothing_else(state: ConsentState, action: Action) -> None:
    if (state, action) in TRANSITIONS:
        assert transition(state, action) is TRANSITIONS[(state, action)]
        assert state not in TERMINAL
    else:
        with pytest.raises(Conflict) as err:
            transition(state, action)
        assert err.value.slug == "consent-transition-invalid"


@given(st.sampled_from(list(ConsentState)), st.integers(0, 10**6))
def test_only_given_releases(state: ConsentState, now: int) -> None:
    refusal = release_refusal(state, valid_until=10**9, now=now)
    assert (refusal is None) == (state is ConsentState.GIVEN)
    expired = release_refusal(state, valid_until=now, now=now)
    assert expired is not None
    if state in LIVE:
        assert expired.slug == "consent-expired"


def test_request_validation() -> None:
    ok = validate_request(TERMS, LIMITS, client_purposes={"dpv:CreditChecking"})
    assert {i.key for i in ok.items if i.sensitive} == {IDN}  # forced on: the requester did not flag it
    cases: list[tuple[Terms, PurposeLimits | None, str]] = [
        (TERMS, None, "purpose-not-allowed"),
        (TERMS, replace(LIMITS, active=False), "purpose-suspended"),
        (replace(TERMS, validity_days=366), LIMITS, "purpose-limit-validity"),
        (replace(TERMS, frequency=Frequency(5, Period.HOUR)), LIMITS, "purpose-limit-frequency"),
        (replace(TERMS, retention_days=31), LIMITS, "purpose-limit-retention"),
    ]
    for terms, limits, slug in cases:
        with pytest.raises(Forbidden) as err:
            validate_request(terms, limits, client_purposes={"dpv:CreditChecking"})
        assert err.value.slug == slug
    with pytest.raises(MalformedInput):
        validate_request(
            replace(TERMS, items=(*TERMS.items, TERMS.items[0])), LIMITS, client_purposes={TERMS.purpose}
        )
    with pytest.raises(MalformedInput):
        claim_key(["credentialSubject", "address", "locality"])
    with pytest.raises(Forbidden):
        validate_request(TERMS, LIMITS, client_purposes={"dpv:Marketing"})


def test_grant_rules() -> None:
    terms = validate_request(TERMS, LIMITS, client_purposes={TERMS.purpose})
    assert check_grant(terms, [BIRTH, NAME], []) == (NAME, BIRTH)
    assert check_grant(terms, [NAME, BIRTH, IDN], [IDN]) == (NAME, BIRTH, IDN)
    for items, confirmed, slug in [
        ([NAME], [], "consent-required-item-missing"),
        ([], [], "consent-items-empty"),
        ([NAME, BIRTH, "credentialSubject.gender"], [], "consent-item-not-requested"),
        ([NAME, BIRTH, IDN], [], "sensitive-item-unconfirmed"),
        ([NAME, BIRTH], [IDN], "sensitive-toggle-invalid"),
        ([NAME, BIRTH, ADDR], [ADDR], "sensitive-toggle-invalid"),
    ]:
        with pytest.raises(VerificationFailed) as err:
            check_grant(terms, items, confirmed)
        assert err.value.slug == slug


@given(
    st.sets(st.sampled_from([IDN, ADDR])),
    st.integers(1, 10),
    st.integers(0, 40),
    st.one_of(st.none(), st.sets(st.sampled_from([NAME, BIRTH, IDN, ADDR, "credentialSubject.x"]))),
    st.one_of(st.none(), st.integers(-5, 60)),
    st.one_of(st.none(), st.integers(0, 12)),
)
def test_narrowing_never_widens(
    optional: set[str], count: int, days: int, items: set[str] | None, until: int | None, freq: int | None
) -> None:
    now = 1_000_000
    current = Grant((NAME, BIRTH, *sorted(optional)), now + days * 86_400, Frequency(count, Period.DAY))
    outcome: Grant | ImiError
    try:
        outcome = narrow(
            TERMS, current, items=items, valid_until=None if until is None else now + until * 86_400,
            frequency_count=freq, now=now,
        )  # fmt: skip
    except ImiError as exc:
        outcome = exc
    if isinstance(outcome, ImiError):
        assert outcome.slug in NARROWING_REFUSALS
        return
    new = outcome
    assert set(new.items) <= set(current.items)
    assert {NAME, BIRTH} <= set(new.items)
    assert now < new.valid_until <= current.valid_until
    assert 1 <= new.frequency.count <= current.frequency.count
    assert new != current


@given(st.lists(st.integers(0, 3 * 86_400), max_size=60), st.integers(1, 5))
def test_window_never_allows_more_than_count(times: list[int], count: int) -> None:
    limit, window, released = Frequency(count, Period.DAY), Window(0, 0), []
    for now in sorted(t + 1_800_000_000 for t in times):
        refused: RateLimited | None = None
        try:
            window = take_release(window, limit, now)
            released.append(now)
        except RateLimited as exc:
            refused = exc
        if refused is not None:
            assert refused.slug == "consent-frequency-exceeded"
            assert refused.extra["retry_after"] > 0
    for now in released:  # within the window that opened at a release, at most ``count`` releases
        assert sum(1 for t in released if now <= t < now + 86_400) <= 2 * count
    assert effective_frequency(Frequency(10, Period.DAY), Frequency(1, Period.HOUR)) == Frequency(
        10, Period.DAY
    )
    assert effective_frequency(Frequency(100, Period.DAY), Frequency(1, Period.HOUR)) == Frequency(
        1, Period.HOUR
    )


def test_fixed_window_counts_exactly() -> None:
    limit, t0 = Frequency(2, Period.HOUR), 1_800_000_000
    w = take_release(Window(0, 0), limit, t0)  # the window opens with its first release
    assert w == Window(t0, 1)
    w = take_release(w, limit, t0 + 100)
    with pytest.raises(RateLimited):
        take_release(w, limit, t0 + 3599)
    assert take_release(w, limit, t0 + 3600) == Window(t0 + 3600, 1)


@given(st.lists(st.sampled_from(list(EventKind)), min_size=1, max_size=12), st.integers(0, 11))
def test_event_chain_detects_any_change(kinds: list[EventKind], tamper: int) -> None:
    head, links = GENESIS, []
    for seq, kind in enumerate(kinds, start=1):
        body = event_body(consent_id="cn_x", seq=seq, version=1, kind=kind, at=seq, detail={"n": seq})
        head = link(head, body)
        links.append((body, head))
    assert verify_chain(links) == head
    index = tamper % len(links)
    changed = [*links]
    changed[index] = ({**links[index][0], "at": -1}, links[index][1])
    with pytest.raises(VerificationFailed):
        verify_chain(changed)
    if len(links) > 1:
        with pytest.raises(VerificationFailed):
            verify_chain(links[1:])  # a chain cannot start in the middle


def test_pairwise_subject() -> None:
    key = b"k" * 32
    a = pairwise_subject(key, "citizen-1", "cl_a")
    assert a == pairwise_subject(key, "citizen-1", "cl_a")
    assert len(a) == 22
    assert (
        len({a, pairwise_subject(key, "citizen-1", "cl_b"), pairwise_subject(key, "citizen-2", "cl_a")}) == 3
    )
    assert pairwise_subject(b"j" * 32, "citizen-1", "cl_a") != a
    assert pairwise_subject(key, "citizen-1c", "l_a") != pairwise_subject(
        key, "citizen-1", "cl_a"
    )  # separator
