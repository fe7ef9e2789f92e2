"""The QR forms of a presentation (``kernel.qr_payload``): round trips, bounded inflation, garbage, sizes.

Properties (hypothesis): the compact ``IMI1:`` form restores any SD-JWT-shaped string of canonical base64url
segments exactly; decoding any text either succeeds or raises ``MalformedInput`` (nothing else, and never more
than 64 KB inflated). Sizes with a real credential from the issuer: the compact 3-claim presentation fits a
version-25 QR code at error correction M, and a reference ``IMI2:`` URL a version-6 one. Real decoder: the
wallet's QR images (plain and reference form) read back by zxing-cpp and verified by the kiosk over HTTP.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import string
import tracemalloc
import zlib
from collections.abc import Callable

import base45
import httpx
import pytest
import zxingcpp
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from kernel.errors import MalformedInput
from kernel.jose import b64url_encode
from kernel.qr import qr_png, qr_version
from kernel.qr_payload import (
    COMPACT_PREFIX,
    MAX_INFLATED,
    PRESET_DICTIONARY,
    ScannedPresentation,
    ScannedReference,
    decode_compact,
    encode_compact,
    encode_reference,
    read_qr,
)
from tests.verifier.verifier_fixtures import Holder

# (a large QR's modules can also read as a one-dimensional code, an EAN-13 say: look for QR codes only)
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
URLSAFE = string.ascii_letters + string.digits + "-_"

# "~"-separated components, each 0 to 3 "."-separated canonical base64url segments (a JWT, a disclosure, a
# KB-JWT, or an empty slot such as the one after an SD-JWT's last "~")
segment = st.binary(max_size=300).map(b64url_encode)
component = st.lists(segment, min_size=0, max_size=3).map(".".join)
presentations = st.lists(component, min_size=1, max_size=24).map("~".join)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packed(frame: bytes, *, version: int = 1) -> str:
    """An ``IMI1:`` text whose DEFLATE stream inflates to ``frame`` (any bytes, well-formed or not)."""
    deflater = zlib.compressobj(level=9, wbits=-15, zdict=PRESET_DICTIONARY)
    body = bytes([version]) + deflater.compress(frame) + deflater.flush()
    text: str = base45.b45encode(body).decode("ascii")
    return COMPACT_PREFIX + text


# ------------------------------------------------------------------------------------------- round trips


@FUZZ
@given(presentations)
@example("eyJhbGciOiJFUzI1NiJ9.eyJ9.c2ln~WyJzIiwibiIsInYiXQ~")  # an SD-JWT without KB
@example("YQ.Yg.Yw~~")
@example(".~..~")
def test_compact_round_trip(presentation: str) -> None:
    compact = encode_compact(presentation)
    assert compact.startswith(COMPACT_PREFIX)
    assert set(compact[len(COMPACT_PREFIX) :]) <= set(base45.BASE45_CHARSET)  # QR alphanumeric mode
    assert decode_compact(compact) == presentation
    scanned = read_qr(compact) if len(compact) <= 8192 else None
    if scanned is not None:
        assert scanned == ScannedPresentation("compact", presentation)


@FUZZ
@given(presentations, st.sampled_from(["=", "+", "/", " ", "%", "é"]), st.integers(min_value=0))
def test_compact_refuses_what_is_not_canonical_base64url(presentation: str, bad: str, where: int) -> None:
    at = where % (len(presentation) + 1)
    with pytest.raises(MalformedInput):
        encode_compact(presentation[:at] + bad + presentation[at:])


def test_compact_refuses_non_canonical_spare_bits() -> None:
    with pytest.raises(MalformedInput):
        encode_compact("QR~")  # "QR" and "QQ" both decode to b"A": only "QQ" is canonical


# ----------------------------------------------------------------------------------------- inflation bombs


@pytest.mark.parametrize("size", [MAX_INFLATED + 1, 4 * 1024 * 1024, 64 * 1024 * 1024])
def test_deflate_bomb_is_refused_without_inflating_it(size: int) -> None:
    deflater = zlib.compressobj(level=9, wbits=-15, zdict=PRESET_DICTIONARY)
    chunk = b"\0" * (1024 * 1024)
    body = bytearray([1])
    for _ in range(size // len(chunk)):
        body += deflater.compress(chunk)
    body += deflater.compress(b"\0" * (size % len(chunk))) + deflater.flush()
    bomb = COMPACT_PREFIX + base45.b45encode(bytes(body)).decode("ascii")
    tracemalloc.start()
    try:
        with pytest.raises(MalformedInput) as exc:
            decode_compact(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert exc.value.slug == "too-large"
    assert peak < 16 * 1024 * 1024, peak  # it stopped at 64 KB; it did not inflate the rest
    if len(bomb) <= 8192:
        with pytest.raises(MalformedInput) as exc:
            read_qr(bomb)
        assert exc.value.slug == "too-large"


@pytest.mark.usefixtures("http_verifier")
def test_deflate_bomb_over_http(client: TestClient) -> None:
    bomb = packed(b"\0" * (4 * 1024 * 1024))
    assert len(bomb) < 8192  # fits the scan request: the kiosk must inflate it to find out
    resp: httpx.Response = client.post("/verifier/scan", json={"qr": bomb})
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["type"] == "urn:imi:problem:too-large"


def test_inflation_past_64_kb_is_never_truncated_into_a_valid_frame() -> None:
    # a well-formed frame of exactly 64 KB (one component, one 65,531-byte segment) ...
    for raw in (b"\0" * (MAX_INFLATED - 5), secrets.token_bytes(MAX_INFLATED - 5)):
        frame = _varint(1) + _varint(1) + _varint(len(raw)) + raw
        assert len(frame) == MAX_INFLATED
        assert decode_compact(packed(frame)) == b64url_encode(raw)
        # ... with bytes behind it is too large, not the first 64 KB of it (zlib can consume all the input
        # of a highly compressible stream and hold the output past the limit, with no unconsumed_tail)
        for extra in (b"\0", b"\0" * 100):
            with pytest.raises(MalformedInput) as exc:
                decode_compact(packed(frame + extra))
            assert exc.value.slug == "too-large"


def test_exactly_64_kb_inflated_is_read_further() -> None:
    # 64 KB inflate; the frame is then parsed (and found malformed): the limit is on size, nothing else
    with pytest.raises(MalformedInput) as exc:
        decode_compact(packed(b"\x7f" * MAX_INFLATED))
    assert exc.value.slug == "qr-malformed"


# ------------------------------------------------------------------------------------------------- garbage


def _only_malformed(text: str) -> None:
    with contextlib.suppress(MalformedInput):
        read_qr(text)


@FUZZ
@given(st.text(max_size=400))
def test_any_text_is_read_or_malformed(text: str) -> None:
    _only_malformed(text)
    _only_malformed(COMPACT_PREFIX + text)
    _only_malformed("IMI2:" + text)
    _only_malformed("IMI2:https://" + text)


@FUZZ
@given(st.text(alphabet=base45.BASE45_CHARSET, max_size=600))
def test_any_base45_text_is_read_or_malformed(text: str) -> None:
    _only_malformed(COMPACT_PREFIX + text)
    _only_malformed(COMPACT_PREFIX + "1" + text)


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_after_the_version_byte_are_read_or_malformed(data: bytes) -> None:
    _only_malformed(COMPACT_PREFIX + base45.b45encode(b"\x01" + data).decode("ascii"))


@FUZZ
@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=3))
def test_any_inflated_frame_is_read_or_malformed(frame: bytes, version: int) -> None:
    """Past base45 and DEFLATE: arbitrary frames exercise the varint and length parsing."""
    try:
        decoded = decode_compact(packed(frame, version=version))
    except MalformedInput:
        return
    assert version == 1
    assert len(decoded) <= 4 * MAX_INFLATED  # base64url of at most 64 KB, plus separators


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=2**35).map(_varint),
            st.binary(max_size=40),
        ),
        max_size=30,
    )
)
def test_frames_of_varints_are_read_or_malformed(pieces: list[bytes]) -> None:
    with contextlib.suppress(MalformedInput):
        decode_compact(packed(b"".join(pieces)))


def test_garbage_slugs() -> None:
    for text, slug in [
        ("", "qr-malformed"),
        ("hello", "qr-not-a-presentation"),
        ("IMI1:", "qr-malformed"),
        ("IMI1:00", "qr-malformed"),  # version 0
        ("IMI1:" + "A" * 9000, "too-large"),
        ("IMI2:mailto:x@example.com", "qr-malformed"),
        ("IMI2:https://a.example/ b", "qr-malformed"),
    ]:
        with pytest.raises(MalformedInput) as exc:
            read_qr(text)
        assert exc.value.slug == slug, text


# ----------------------------------------------------------------------------------------------- QR sizes


def test_compact_three_claim_presentation_fits_version_25(make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    for claims in (["name", "birthDate", "nationality"], ["name", "gender", "birthDate"]):
        presentation = holder.present(claims, with_receipt=False)
        compact = encode_compact(presentation)
        assert decode_compact(compact) == presentation
        version = qr_version(compact, "M")
        assert version <= 25, (len(presentation), len(compact), version)


@FUZZ
@given(st.text(alphabet=URLSAFE, min_size=22, max_size=22))
def test_reference_form_fits_version_6(token: str) -> None:
    text = encode_reference(f"https://id.example.gov.cn/w/p/{token}")
    assert text == f"IMI2:https://id.example.gov.cn/w/p/{token}"
    assert read_qr(text) == ScannedReference(f"https://id.example.gov.cn/w/p/{token}")
    assert qr_version(text, "M") <= 6


# ------------------------------------------------------------------------------------ a real QR decoder


def _zxing(text: str, level: str = "M") -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_png(text, level))), formats=QR_ONLY)
    assert len(found) == 1
    decoded: str = found[0].text
    return decoded


@pytest.mark.usefixtures("http_verifier")
def test_zxing_reads_the_plain_form_and_the_kiosk_verifies_it(
    client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    presentation = holder.present(["name", "nationality"], with_receipt=False)
    # the plain form is over 2,400 characters: more than any QR version holds at M, so level L (version 37+)
    scanned = _zxing(presentation, "L")
    assert scanned == presentation
    resp: httpx.Response = client.post("/verifier/scan", json={"qr": scanned})
    assert resp.status_code == 200, resp.text
    assert resp.json()["disclosed"] == {"name": "王小明", "nationality": "CHN"}


@FUZZ
@given(st.text(alphabet=base45.BASE45_CHARSET, min_size=1, max_size=400))
def test_zxing_reads_base45_back_exactly(text: str) -> None:
    """Base45 has a space and '$%*+-./:': a real decoder must give the text back byte for byte."""
    compact = COMPACT_PREFIX + text
    assert _zxing(compact) == compact


def test_zxing_reads_the_reference_form() -> None:
    text = encode_reference(f"https://id.example.gov.cn/w/p/{secrets.token_urlsafe(16)}")
    assert _zxing(text) == text
