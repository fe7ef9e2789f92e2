"""What a citizen's QR code may carry, and how a kiosk reads it back (pure).

Three forms, told apart by their prefix:

* plain: the SD-JWT+KB presentation text itself (``eyJ...~...~eyJ...``); big (a 3-claim presentation is
  about version 30 at error correction M) but universal.
* compact, ``IMI1:``: every base64url segment of the presentation decoded to bytes, framed with varint
  lengths, raw-DEFLATE-compressed with a preset dictionary of the strings every IMI presentation repeats,
  then Base45 (RFC 9285) so that the QR uses alphanumeric mode (5.5 bits a character). Decoding restores the
  exact presentation string, so every signature still verifies. Works offline.
* reference, ``IMI2:``: a short URL (under an origin the verifier trusts) where the presentation can be
  fetched once. Small QR (version <= 6 at M); needs the verifier online.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

import base45

from kernel.errors import MalformedInput
from kernel.jose import b64url_decode, b64url_encode

COMPACT_PREFIX = "IMI1:"
REFERENCE_PREFIX = "IMI2:"
MAX_QR_TEXT = 8 * 1024
MAX_INFLATED = 64 * 1024
_VERSION = 1
# A preset DEFLATE dictionary (RFC 1950 FDICT) of what every IMI presentation repeats: JOSE headers, VCDM 2.0
# member names, type names, status-list entries. Part of the IMI1 format: changing it needs a new version byte.
# DEFLATE finds matches best near the end of the window, so the most frequent strings come last.
PRESET_DICTIONARY = (
    b'"evidence":[{"id":"urn:imi:check:","type":["Evidence","InPersonRealNameCheck"],"verifier":"'
    b'"location":"","time":"","method":["id-card-chip","face-match"],"documentType":"CN-resident-id-card",'
    b'"result":"passed","faceMatch":{"score":,"threshold":}}]'
    b'LegalEntityCredential"creditCode""legalRepresentative""registeredAddress"'
    b'"name""birthDate""gender""male""female""nationality""CHN""address""idNumber"'
    b'{"typ":"kb+jwt","alg":"ES256"}{"iat":,"aud":"urn:imi:qr-presentation","nonce":"","sd_hash":"'
    b'{"alg":"ES256","typ":"vc+sd-jwt","kid":"did:web:","cty":"vc"}'
    b'{"@context":["https://www.w3.org/ns/credentials/v2"],"id":"urn:uuid:","type":["VerifiableCredential",'
    b'"RealNameIdentityCredential"],"issuer":"did:web:","validFrom":"20","validUntil":"20",'
    b'"credentialSubject":{"_sd":["'
    b'"credentialStatus":[{"id":"/issuer/status/rev-1#","type":"BitstringStatusListEntry",'
    b'"statusPurpose":"revocation","statusListIndex":"","statusListCredential":"/issuer/status/rev-1"},'
    b'{"id":"/issuer/status/sus-1#","type":"BitstringStatusListEntry","statusPurpose":"suspension",'
    b'"statusListIndex":"","statusListCredential":"/issuer/status/sus-1"}],'
    b'"iss":"did:web:","jti":"urn:uuid:","iat":,"exp":,"_sd_alg":"sha-256",'
    b'"cnf":{"jwk":{"kty":"EC","crv":"P-256","x":"","y":""}}}'
)


@dataclass(frozen=True)
class ScannedPresentation:
    form: Literal["plain", "compact"]
    presentation: str


@dataclass(frozen=True)
class ScannedReference:
    url: str


def _segments(presentation: str) -> list[list[str]]:
    # "~"-separated components, each a "."-separated list of base64url segments (a JWT, or one disclosure)
    return [component.split(".") if component else [] for component in presentation.split("~")]


def encode_compact(presentation: str) -> str:
    """The ``IMI1:`` form of an SD-JWT(+KB) presentation. Raises ``MalformedInput`` if it is not one."""
    frame = bytearray()
    components = _segments(presentation)
    frame += _varint(len(components))
    for parts in components:
        frame += _varint(len(parts))
        for part in parts:
            raw = b64url_decode(part, slug="presentation-malformed")
            if b64url_encode(raw) != part:
                raise MalformedInput(
                    "Presentation segments must be canonical base64url.", slug="presentation-malformed"
                )
            frame += _varint(len(raw)) + raw
    # raw DEFLATE (RFC 1951): a zlib header and checksum would only add bytes; the signatures protect the content
    deflater = zlib.compressobj(level=9, wbits=-15, zdict=PRESET_DICTIONARY)
    packed = bytes([_VERSION]) + deflater.compress(bytes(frame)) + deflater.flush()
    return COMPACT_PREFIX + str(base45.b45encode(packed).decode("ascii"))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(frame: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(frame) or shift > 28:
            raise MalformedInput("Truncated compact presentation.", slug="qr-malformed")
        byte = frame[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _read(frame: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if pos + n > len(frame):
        raise MalformedInput("Truncated compact presentation.", slug="qr-malformed")
    return frame[pos : pos + n], pos + n


def decode_compact(text: str) -> str:
    """Inverse of :func:`encode_compact`; bounded inflation (no zip bombs)."""
    try:
        packed = base45.b45decode(text[len(COMPACT_PREFIX) :])
        if not packed or packed[0] != _VERSION:
            raise MalformedInput("Unknown compact presentation version.", slug="qr-malformed")
        inflater = zlib.decompressobj(wbits=-15, zdict=PRESET_DICTIONARY)
        # one byte more than allowed: zlib may hold pending output with all input consumed (no unconsumed_tail)
        frame = inflater.decompress(packed[1:], MAX_INFLATED + 1)
        if len(frame) > MAX_INFLATED or inflater.unconsumed_tail:
            raise MalformedInput("Compact presentation inflates too far.", slug="too-large")
    except (ValueError, zlib.error) as exc:
        raise MalformedInput("The QR text is not a compact presentation.", slug="qr-malformed") from exc
    count, pos = _read_varint(frame, 0)
    if count > 256:
        raise MalformedInput("Too many components.", slug="qr-malformed")
    components: list[str] = []
    for _ in range(count):
        n_parts, pos = _read_varint(frame, pos)
        if n_parts > 3:
            raise MalformedInput("Too many segments in a component.", slug="qr-malformed")
        parts = []
        for _ in range(n_parts):
            size, pos = _read_varint(frame, pos)
            raw, pos = _read(frame, pos, size)
            parts.append(b64url_encode(raw))
        components.append(".".join(parts))
    if pos != len(frame):
        raise MalformedInput("Trailing bytes in compact presentation.", slug="qr-malformed")
    return "~".join(components)


def encode_reference(url: str) -> str:
    return REFERENCE_PREFIX + url


def read_qr(text: str) -> ScannedPresentation | ScannedReference:
    """Classify and decode scanned QR text. Raises ``MalformedInput`` for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise MalformedInput("The QR text is empty.", slug="qr-malformed")
    if len(text) > MAX_QR_TEXT:
        raise MalformedInput("The QR text is too long.", slug="too-large")
    text = text.strip("\r\n\t")  # not spaces: Base45 uses the space character
    if text.startswith(COMPACT_PREFIX):
        return ScannedPresentation("compact", decode_compact(text))
    if text.startswith(REFERENCE_PREFIX):
        url = text[len(REFERENCE_PREFIX) :]
        if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
            raise MalformedInput("The reference is not a URL.", slug="qr-malformed")
        return ScannedReference(url)
    if text.startswith("eyJ") and "~" in text:
        return ScannedPresentation("plain", text)
    raise MalformedInput("This QR code is not an IMI presentation.", slug="qr-not-a-presentation")
