"""W3C Bitstring Status List v1.0 (https://www.w3.org/TR/vc-bitstring-status-list/), pure parts.

A status list is a bitstring with one bit per issued credential (``statusSize`` 1; larger sizes are not
used by IMI). The bit at ``statusListIndex`` is 1 when the credential is revoked (or suspended). The spec
fixes:

* the uncompressed bitstring is at least 16 KB, i.e. 131,072 entries (sections 2.2 and 3.2: below that a
  verifier raises ``STATUS_LIST_LENGTH_ERROR``, since a short list gives its holders too little herd privacy);
* index 0 is the left-most bit of the bitstring: the most significant bit of the first byte (section 2.2);
* ``encodedList`` is the Multibase base64url (no padding, prefix ``u``) of the GZIP (RFC 1952) compressed
  bitstring (sections 2.2, 3.3 and 3.4);
* indexes SHOULD be assigned randomly so that nothing can be inferred from a position (sections 2.1, 6.5).

Fetching and signing the status list credential live elsewhere; randomness is passed in by the caller.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import zlib
from collections.abc import Callable
from typing import Final, Literal

from kernel.errors import Conflict, MalformedInput

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MIN_ENTRIES",
    "Bitstring",
    "StatusPurpose",
    "allocate_index",
    "decode_list",
    "encode_list",
    "status_entry",
    "status_list_credential_subject",
]

#: The spec's minimum number of entries: 131,072 bits = 16 KB uncompressed.
MIN_ENTRIES: Final = 131_072

#: Largest uncompressed bitstring :func:`decode_list` will produce unless told otherwise (16 MiB).
DEFAULT_MAX_BYTES: Final = 16 * 1024 * 1024

#: Random draws :func:`allocate_index` makes before it calls the list full.
DEFAULT_MAX_ATTEMPTS: Final = 256

StatusPurpose = Literal["revocation", "suspension"]
_PURPOSES: Final = frozenset({"revocation", "suspension"})

_MULTIBASE_BASE64URL: Final = "u"
_BASE64URL_NOPAD: Final = re.compile(r"[A-Za-z0-9_-]*")
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS  # zlib: accept a gzip header and trailer (and check CRC-32, ISIZE)


class Bitstring:
    """A mutable array of ``len(self)`` bits; bit ``i`` is bit ``7 - i % 8`` of byte ``i // 8``.

    That is the spec's order: index 0 is the most significant bit of the first byte. The length is a
    multiple of 8 and, unless ``minimum`` is lowered, at least :data:`MIN_ENTRIES`.
    """

    __slots__ = ("_bytes",)

    def __init__(self, length: int = MIN_ENTRIES, *, minimum: int = MIN_ENTRIES) -> None:
        _check_length(length, minimum)
        self._bytes = bytearray(length // 8)

    @classmethod
    def from_bytes(cls, data: bytes, *, minimum: int = MIN_ENTRIES) -> Bitstring:
        """A bitstring holding a copy of ``data`` (for example the output of :func:`decode_list`)."""
        bits = cls(len(data) * 8, minimum=minimum)
        bits._bytes[:] = data
        return bits

    def __len__(self) -> int:
        return len(self._bytes) * 8

    def __repr__(self) -> str:
        return f"Bitstring({len(self)} bits, {self.count()} set)"

    def to_bytes(self) -> bytes:
        return bytes(self._bytes)

    def count(self) -> int:
        """How many bits are set."""
        return sum(byte.bit_count() for byte in self._bytes)

    def get(self, index: int) -> bool:
        byte, mask = self._locate(index)
        return bool(self._bytes[byte] & mask)

    def set(self, index: int, value: bool) -> None:
        byte, mask = self._locate(index)
        if value:
            self._bytes[byte] |= mask
        else:
            self._bytes[byte] &= ~mask & 0xFF

    def encode(self) -> str:
        """The ``encodedList`` value for this bitstring."""
        return encode_list(self.to_bytes(), min_entries=0)

    def _locate(self, index: int) -> tuple[int, int]:
        # The index may come from a presented credential's statusListIndex: out of range is the caller's
        # fault (the spec's RANGE_ERROR), not ours.
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self):
            raise MalformedInput(
                f"status list index {index!r} is outside 0..{len(self) - 1}", slug="status-list-index-range"
            )
        return index >> 3, 0x80 >> (index & 7)


def _check_length(length: int, minimum: int) -> None:
    if length <= 0 or length % 8:
        raise ValueError(f"a bitstring length is a positive multiple of 8, not {length}")
    if length < minimum:
        raise ValueError(f"a bitstring of {length} bits is shorter than the minimum of {minimum}")


def encode_list(bits: bytes, *, min_entries: int = MIN_ENTRIES) -> str:
    """``u`` + base64url without padding of the GZIP-compressed ``bits`` (the spec's ``encodedList``).

    The gzip header carries no timestamp (``mtime`` 0), so equal bitstrings give equal strings.
    """
    if len(bits) * 8 < min_entries:
        raise ValueError(f"a status list of {len(bits) * 8} entries is shorter than {min_entries}")
    compressed = gzip.compress(bytes(bits), compresslevel=9, mtime=0)
    return _MULTIBASE_BASE64URL + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")


def decode_list(encoded: str, *, max_bytes: int = DEFAULT_MAX_BYTES, min_entries: int = MIN_ENTRIES) -> bytes:
    """The uncompressed bitstring of an ``encodedList`` value, checked strictly.

    Refused with ``status-list-malformed``: a missing ``u`` prefix, anything but canonical unpadded base64url,
    data that is not complete, intact GZIP (one or more members, CRC and length verified, nothing trailing),
    or that would expand beyond ``max_bytes`` (decompression stops there: no gzip bomb gets to allocate).
    Refused with ``status-list-too-short``: fewer than ``min_entries`` bits (the spec's minimum unless an
    ecosystem specification sets a lower bound).
    """
    if not isinstance(encoded, str) or not encoded.startswith(_MULTIBASE_BASE64URL):
        raise MalformedInput(
            "encodedList must be Multibase base64url: it starts with 'u'", slug="status-list-malformed"
        )
    compressed = _base64url_decode(encoded[1:])
    bits = _gunzip_bounded(compressed, max_bytes)
    if len(bits) * 8 < min_entries:
        raise MalformedInput(
            f"the status list has {len(bits) * 8} entries, fewer than the minimum of {min_entries}",
            slug="status-list-too-short",
        )
    return bits


def _base64url_decode(text: str) -> bytes:
    # base64 itself would skip stray characters and accept padding or non-zero spare bits; here only the
    # one canonical unpadded spelling of a byte string is accepted.
    if not _BASE64URL_NOPAD.fullmatch(text) or len(text) % 4 == 1:
        raise MalformedInput("encodedList is not unpadded base64url", slug="status-list-malformed")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedInput("encodedList is not unpadded base64url", slug="status-list-malformed") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != text:
        raise MalformedInput("encodedList is not canonical base64url", slug="status-list-malformed")
    return data


def _gunzip_bounded(data: bytes, limit: int) -> bytes:
    if not data:
        raise MalformedInput("encodedList holds no GZIP data", slug="status-list-malformed")
    out = bytearray()
    rest = data
    while rest:  # RFC 1952 allows several members back to back; each must be complete
        inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
        try:
            # At most one byte over the limit, so that "exactly the limit" and "more" can be told apart.
            out += inflater.decompress(rest, limit - len(out) + 1)
        except zlib.error as exc:
            raise MalformedInput(
                f"encodedList is not valid GZIP: {exc}", slug="status-list-malformed"
            ) from None
        if len(out) > limit:
            raise MalformedInput(
                f"encodedList expands beyond {limit} bytes", slug="status-list-malformed", limit=limit
            )
        if not inflater.eof:
            raise MalformedInput("encodedList holds truncated GZIP data", slug="status-list-malformed")
        rest = inflater.unused_data
    return bytes(out)


def allocate_index(
    size: int,
    taken: Callable[[int], bool],
    *,
    rng: Callable[[int], int],
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> int:
    """A random free index in ``0..size-1``: never sequential, never one for which ``taken`` is true.

    ``rng(n)`` returns a uniformly random integer in ``0..n-1`` (for example ``secrets.randbelow``).
    Up to ``max_attempts`` draws are tried; if all hit taken indexes the list is (nearly) full and
    ``Conflict`` (``status-list-full``) tells the caller to open a new list. With a fraction ``f`` of the
    list taken, a call fails with probability ``f ** max_attempts``: with the default of 256 draws,
    about 1e-12 at 90 % full.
    """
    if size <= 0:
        raise ValueError(f"a status list has a positive size, not {size}")
    if max_attempts <= 0:
        raise ValueError(f"max_attempts must be positive, not {max_attempts}")
    for _ in range(max_attempts):
        index = rng(size)
        if not 0 <= index < size:
            raise ValueError(f"rng({size}) returned {index}, outside 0..{size - 1}")
        if not taken(index):
            return index
    raise Conflict(
        f"{max_attempts} random draws found no free index: the status list of {size} is (nearly) full",
        slug="status-list-full",
        size=size,
    )


def _check_purpose(purpose: str) -> None:
    if purpose not in _PURPOSES:
        raise ValueError(f"status purpose {purpose!r} is not one of {sorted(_PURPOSES)}")


def status_entry(list_url: str, index: int, purpose: StatusPurpose) -> dict[str, str]:
    """The ``credentialStatus`` object (a ``BitstringStatusListEntry``) for one credential."""
    _check_purpose(purpose)
    if isinstance(index, bool) or index < 0:
        raise ValueError(f"a status list index is a non-negative integer, not {index!r}")
    # No "id": it is optional (the spec's MAY) and would repeat the list URL in every credential and QR code.
    return {
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": str(index),  # the spec: an integer "expressed as a string in base 10"
        "statusListCredential": list_url,
    }


def status_list_credential_subject(list_url: str, purpose: StatusPurpose, encoded: str) -> dict[str, str]:
    """The ``credentialSubject`` (a ``BitstringStatusList``) of the status list credential at ``list_url``."""
    _check_purpose(purpose)
    if not encoded.startswith(_MULTIBASE_BASE64URL):
        raise ValueError("encodedList must be the output of encode_list (it starts with 'u')")
    return {
        "id": f"{list_url}#list",
        "type": "BitstringStatusList",
        "statusPurpose": purpose,
        "encodedList": encoded,
    }
