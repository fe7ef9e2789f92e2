"""W3C Bitstring Status List v1.0: bit order, encodedList, allocation, JSON shapes."""

from __future__ import annotations

import base64
import gzip
import random
import tracemalloc
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.errors import Conflict, MalformedInput
from kernel.statuslist import (
    MIN_ENTRIES,
    Bitstring,
    allocate_index,
    decode_list,
    encode_list,
    status_entry,
    status_list_credential_subject,
)

# https://www.w3.org/TR/vc-bitstring-status-list/ section 2.2, Example 3 "Example
# BitstringStatusListCredential", credentialSubject.encodedList: an all-zero list of 131,072 entries.
SPEC_EXAMPLE_ENCODED_LIST = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"
LIST_URL = "https://example.com/credentials/status/3"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def malformed_slug(encoded: str, **kwargs: int) -> str:
    with pytest.raises(MalformedInput) as excinfo:
        decode_list(encoded, **kwargs)
    return excinfo.value.slug


# --- the spec's vector ------------------------------------------------------------------------------------


def test_spec_example_decodes_to_16_kb_of_zeros() -> None:
    bits = decode_list(SPEC_EXAMPLE_ENCODED_LIST)
    assert len(bits) == 16 * 1024 == MIN_ENTRIES // 8
    assert bits == bytes(16 * 1024)
    status = Bitstring.from_bytes(bits)
    assert len(status) == 131_072
    assert status.count() == 0
    assert not status.get(0)
    assert not status.get(131_071)


def test_min_entries_is_16_kb() -> None:
    assert MIN_ENTRIES == 131_072 == 16 * 1024 * 8


# --- bit order --------------------------------------------------------------------------------------------


def test_index_zero_is_the_most_significant_bit_of_the_first_byte() -> None:
    bits = Bitstring()
    bits.set(0, True)
    data = bits.to_bytes()
    assert data[0] == 0x80
    assert data[1:] == bytes(len(data) - 1)


@pytest.mark.parametrize(
    ("index", "byte", "value"),
    [(1, 0, 0x40), (7, 0, 0x01), (8, 1, 0x80), (13, 1, 0x04), (MIN_ENTRIES - 1, MIN_ENTRIES // 8 - 1, 0x01)],
)
def test_bit_positions(index: int, byte: int, value: int) -> None:
    bits = Bitstring()
    bits.set(index, True)
    data = bits.to_bytes()
    assert data[byte] == value
    assert sum(data) == value


def test_hand_made_byte_reads_back() -> None:
    # 0b1010_0001: indexes 0, 2 and 7 are set.
    bits = Bitstring.from_bytes(b"\xa1" + bytes(MIN_ENTRIES // 8 - 1))
    assert [bits.get(i) for i in range(9)] == [True, False, True, False, False, False, False, True, False]


def test_set_and_clear() -> None:
    bits = Bitstring()
    bits.set(5, True)
    bits.set(6, True)
    bits.set(5, False)
    assert not bits.get(5)
    assert bits.get(6)
    assert bits.to_bytes()[0] == 0x02
    bits.set(6, False)
    assert bits.count() == 0


@given(st.sets(st.integers(0, MIN_ENTRIES - 1), max_size=50))
def test_encode_decode_round_trip(indexes: set[int]) -> None:
    bits = Bitstring()
    for index in indexes:
        bits.set(index, True)
    encoded = bits.encode()
    assert encoded.startswith("u")
    assert "=" not in encoded
    back = Bitstring.from_bytes(decode_list(encoded))
    assert all(back.get(i) for i in indexes)
    assert back.count() == len(indexes)
    assert back.to_bytes() == bits.to_bytes()


def test_encode_is_deterministic_and_spec_shaped() -> None:
    zeros = bytes(MIN_ENTRIES // 8)
    encoded = encode_list(zeros)
    assert encoded == encode_list(zeros)
    raw = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
    assert raw[:2] == b"\x1f\x8b"  # a GZIP member (RFC 1952), not a bare zlib stream
    assert raw[4:8] == b"\x00\x00\x00\x00"  # MTIME 0: nothing of the clock leaks into the list
    assert gzip.decompress(raw) == zeros


def test_bitstring_length_rules() -> None:
    assert len(Bitstring()) == MIN_ENTRIES
    assert len(Bitstring(MIN_ENTRIES * 2)) == MIN_ENTRIES * 2
    assert len(Bitstring(64, minimum=8)) == 64
    for bad in (0, -8, MIN_ENTRIES + 1, MIN_ENTRIES - 8):
        with pytest.raises(ValueError, match="bitstring"):
            Bitstring(bad)
    with pytest.raises(ValueError, match="shorter"):
        Bitstring.from_bytes(bytes(16))


@pytest.mark.parametrize("index", [-1, MIN_ENTRIES, 10**30])
def test_index_out_of_range(index: int) -> None:
    bits = Bitstring()
    with pytest.raises(MalformedInput) as excinfo:
        bits.get(index)
    assert excinfo.value.slug == "status-list-index-range"
    with pytest.raises(MalformedInput):
        bits.set(index, True)


def test_encode_refuses_short_lists_unless_allowed() -> None:
    with pytest.raises(ValueError, match="shorter"):
        encode_list(bytes(16))
    assert decode_list(encode_list(bytes(16), min_entries=0), min_entries=128) == bytes(16)


# --- strict decoding --------------------------------------------------------------------------------------


def test_missing_multibase_prefix_refused() -> None:
    assert malformed_slug(SPEC_EXAMPLE_ENCODED_LIST[1:]) == "status-list-malformed"  # StatusList2021 style
    assert malformed_slug("z" + SPEC_EXAMPLE_ENCODED_LIST[1:]) == "status-list-malformed"
    assert malformed_slug("") == "status-list-malformed"
    assert malformed_slug("u") == "status-list-malformed"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s + "=",  # padding
        lambda s: s + "==",
        lambda s: s.replace("-", "+"),  # standard alphabet
        lambda s: s[:10] + " " + s[10:],
        lambda s: s[:10] + "\n" + s[10:],
        lambda s: s + "A",  # length 1 mod 4
        lambda s: s[:-1] + "B",  # non-zero spare bits: not the canonical spelling
    ],
)
def test_non_canonical_base64url_refused(mutate: object) -> None:
    encoded = mutate(SPEC_EXAMPLE_ENCODED_LIST)  # type: ignore[operator]
    assert encoded != SPEC_EXAMPLE_ENCODED_LIST
    assert malformed_slug(encoded) == "status-list-malformed"


def test_not_gzip_refused() -> None:
    zeros = bytes(MIN_ENTRIES // 8)
    assert malformed_slug("u" + b64url(zlib.compress(zeros))) == "status-list-malformed"  # zlib, not gzip
    assert malformed_slug("u" + b64url(zeros)) == "status-list-malformed"  # uncompressed
    assert malformed_slug("u" + b64url(b"hello world")) == "status-list-malformed"


def test_truncated_or_corrupt_gzip_refused() -> None:
    raw = gzip.compress(bytes(MIN_ENTRIES // 8), mtime=0)
    assert malformed_slug("u" + b64url(raw[:-4])) == "status-list-malformed"  # ISIZE cut off
    assert malformed_slug("u" + b64url(raw[:20])) == "status-list-malformed"
    bad_crc = raw[:-8] + bytes(b ^ 0xFF for b in raw[-8:-4]) + raw[-4:]
    assert malformed_slug("u" + b64url(bad_crc)) == "status-list-malformed"
    bad_size = raw[:-4] + (1).to_bytes(4, "little")
    assert malformed_slug("u" + b64url(bad_size)) == "status-list-malformed"
    assert malformed_slug("u" + b64url(raw + b"garbage")) == "status-list-malformed"


def test_two_gzip_members_are_one_list() -> None:
    half = bytes(MIN_ENTRIES // 16)
    raw = gzip.compress(half, mtime=0) + gzip.compress(b"\xff" * len(half), mtime=0)
    assert decode_list("u" + b64url(raw)) == half + b"\xff" * len(half)


def test_gzip_bomb_refused_without_expanding_it() -> None:
    # 256 MiB of zeros compresses to about 256 KiB; decoding stops at max_bytes (16 MiB by default) instead
    # of allocating the lot, which tracemalloc's peak shows.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    raw = b"".join(compressor.compress(chunk) for _ in range(256)) + compressor.flush()
    assert len(raw) < 1 << 20
    encoded = "u" + b64url(raw)
    tracemalloc.start()
    try:
        with pytest.raises(MalformedInput) as excinfo:
            decode_list(encoded)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert excinfo.value.slug == "status-list-malformed"
    assert "expands beyond" in excinfo.value.detail
    assert peak < 64 << 20


def test_max_bytes_is_inclusive() -> None:
    data = bytes(MIN_ENTRIES // 8)
    encoded = encode_list(data)
    assert decode_list(encoded, max_bytes=len(data)) == data
    assert malformed_slug(encoded, max_bytes=len(data) - 1) == "status-list-malformed"


def test_bomb_across_members_refused() -> None:
    member = gzip.compress(bytes(MIN_ENTRIES // 8), mtime=0)
    encoded = "u" + b64url(member * 4)
    assert len(decode_list(encoded)) == 4 * MIN_ENTRIES // 8
    assert malformed_slug(encoded, max_bytes=3 * MIN_ENTRIES // 8) == "status-list-malformed"


def test_short_list_refused_unless_allowed() -> None:
    short = "u" + b64url(gzip.compress(bytes(MIN_ENTRIES // 8 - 1), mtime=0))
    assert malformed_slug(short) == "status-list-too-short"
    assert decode_list(short, min_entries=MIN_ENTRIES - 8) == bytes(MIN_ENTRIES // 8 - 1)
    tiny = "u" + b64url(gzip.compress(b"\x80", mtime=0))
    assert malformed_slug(tiny) == "status-list-too-short"
    assert decode_list(tiny, min_entries=8) == b"\x80"


def test_non_string_refused() -> None:
    assert malformed_slug(b"uH4sI") == "status-list-malformed"  # type: ignore[arg-type]


# --- random allocation ------------------------------------------------------------------------------------


def test_allocation_never_repeats_and_covers_a_small_list() -> None:
    size = 256
    rng = random.Random(20240515)
    taken: set[int] = set()
    order = []
    for _ in range(size):
        index = allocate_index(size, taken.__contains__, rng=rng.randrange, max_attempts=100_000)
        assert index not in taken
        taken.add(index)
        order.append(index)
    assert taken == set(range(size))  # covers every slot
    assert order != sorted(order)  # random, not sequential
    assert order[:16] != list(range(16))
    with pytest.raises(Conflict) as excinfo:
        allocate_index(size, taken.__contains__, rng=rng.randrange)
    assert excinfo.value.slug == "status-list-full"
    assert excinfo.value.status == 409


def test_allocation_spreads_over_the_whole_list() -> None:
    rng = random.Random(7)
    taken: set[int] = set()
    for _ in range(2_000):
        taken.add(allocate_index(MIN_ENTRIES, taken.__contains__, rng=rng.randrange))
    assert len(taken) == 2_000
    quarters = [
        sum(1 for i in taken if q * MIN_ENTRIES // 4 <= i < (q + 1) * MIN_ENTRIES // 4) for q in range(4)
    ]
    assert all(400 < count < 600 for count in quarters), quarters


@given(st.sets(st.integers(0, 63), max_size=63), st.randoms(use_true_random=True))
def test_allocation_never_returns_a_taken_index(taken: set[int], rnd: random.Random) -> None:
    index = allocate_index(64, taken.__contains__, rng=rnd.randrange, max_attempts=10_000)
    assert 0 <= index < 64
    assert index not in taken


def test_full_list_raises_after_bounded_attempts() -> None:
    calls = 0

    def always_taken(_: int) -> bool:
        nonlocal calls
        calls += 1
        return True

    with pytest.raises(Conflict) as excinfo:
        allocate_index(MIN_ENTRIES, always_taken, rng=random.Random(1).randrange, max_attempts=50)
    assert excinfo.value.slug == "status-list-full"
    assert calls == 50


def test_allocation_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="positive size"):
        allocate_index(0, lambda _: False, rng=lambda n: 0)
    with pytest.raises(ValueError, match="max_attempts"):
        allocate_index(8, lambda _: False, rng=lambda n: 0, max_attempts=0)
    with pytest.raises(ValueError, match="outside"):
        allocate_index(8, lambda _: False, rng=lambda n: n)


# --- JSON shapes ------------------------------------------------------------------------------------------


def test_status_entry_matches_the_spec_example() -> None:
    # Section 2.1, Example 1: the revocation entry of https://example.com/credentials/23894672394, without its
    # optional "id" (IMI leaves it out to keep presentations small enough for one QR code).
    assert status_entry(LIST_URL, 94567, "revocation") == {
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": "https://example.com/credentials/status/3",
    }
    entry = status_entry("https://example.com/credentials/status/4", 23452, "suspension")
    assert entry["statusPurpose"] == "suspension"
    assert entry["statusListIndex"] == "23452"


def test_status_entry_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="purpose"):
        status_entry(LIST_URL, 1, "refresh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        status_entry(LIST_URL, -1, "revocation")


def test_credential_subject_matches_the_spec_example() -> None:
    # Section 2.2, Example 3 (whose subject id is https://example.com/status/3#list).
    subject = status_list_credential_subject(
        "https://example.com/status/3", "revocation", SPEC_EXAMPLE_ENCODED_LIST
    )
    assert subject == {
        "id": "https://example.com/status/3#list",
        "type": "BitstringStatusList",
        "statusPurpose": "revocation",
        "encodedList": SPEC_EXAMPLE_ENCODED_LIST,
    }
    with pytest.raises(ValueError, match="starts with 'u'"):
        status_list_credential_subject(LIST_URL, "revocation", SPEC_EXAMPLE_ENCODED_LIST[1:])
    with pytest.raises(ValueError, match="purpose"):
        status_list_credential_subject(LIST_URL, "message", SPEC_EXAMPLE_ENCODED_LIST)  # type: ignore[arg-type]
