"""The verifier's windows on public material: issuer keys from DID documents, status lists over HTTP."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from kernel.did import DidResolver, resolve_key
from kernel.errors import InfrastructureFailure, VerificationFailed
from kernel.jose import PublicKey, decode_jws_unverified, verify_jws
from kernel.statuslist import Bitstring, decode_list
from verifier.fetch import Fetcher
from verifier.policy import IssuerKeys


class DidKeys:
    """``IssuerKeys`` over a DID resolver (did:web over HTTP, or a static set from an offline bundle).

    Resolved keys are kept ``ttl`` seconds: parsing a DID document for every scan would cost more than the
    signature check; a key removed from a DID document stops verifying within ``ttl``.
    """

    def __init__(
        self, resolver: DidResolver, *, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._resolver = resolver
        self._ttl = ttl
        self._clock = clock
        self._keys: dict[str, tuple[float, PublicKey]] = {}

    def key_for(self, kid: str) -> PublicKey:
        now = self._clock()
        hit = self._keys.get(kid)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        key = resolve_key(kid, self._resolver, purpose="assertionMethod")
        if len(self._keys) > 1024:
            self._keys.clear()
        self._keys[kid] = (now, key)
        return key


class ListStatusSource:
    """``StatusSource`` reading signed ``BitstringStatusListCredential``s (vc+jwt) through a ``Fetcher``.

    The list must be signed by a key of the credential's own issuer, be a list for the same purpose, and still
    be valid (``validUntil``); decoded lists are kept by content hash, so a cached body is decoded once.
    """

    def __init__(self, fetcher: Fetcher, keys: IssuerKeys, *, clock: Callable[[], float]) -> None:
        self._fetcher = fetcher
        self._keys = keys
        self._clock = clock
        self._decoded: OrderedDict[str, Bitstring] = OrderedDict()

    def bit(self, list_url: str, index: int, *, issuer: str, purpose: str) -> bool:
        fetched = self._fetcher.get(list_url)
        if fetched.status != 200:
            raise InfrastructureFailure(
                f"The status list answered {fetched.status}.", slug="status-unavailable"
            )
        digest = hashlib.sha256(fetched.body).hexdigest()
        bits = self._decoded.get(digest)
        if bits is None:
            bits = self._open(
                fetched.body.decode("ascii", errors="replace").strip(), list_url, issuer, purpose
            )
            self._decoded[digest] = bits
            if len(self._decoded) > 256:
                self._decoded.popitem(last=False)
        return bits.get(index)

    def _open(self, jwt: str, list_url: str, issuer: str, purpose: str) -> Bitstring:
        kid = str(decode_jws_unverified(jwt).header.get("kid", ""))
        if not kid.startswith(issuer + "#"):
            raise VerificationFailed(
                "The status list is not signed by the credential's issuer.", slug="status-list-untrusted"
            )
        payload = verify_jws(jwt, self._keys.key_for(kid), expected_typ="vc+jwt").payload
        subject = payload.get("credentialSubject", {})
        if (
            "BitstringStatusListCredential" not in payload.get("type", [])
            or payload.get("issuer") != issuer
            or not isinstance(subject, dict)
            or subject.get("statusPurpose") != purpose
            or payload.get("id") != list_url
        ):
            raise VerificationFailed("The status list does not match the entry.", slug="status-list-mismatch")
        until = payload.get("validUntil")
        if (
            isinstance(until, str)
            and datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp() < self._clock()
        ):
            raise VerificationFailed("The status list has expired.", slug="status-list-expired")
        return Bitstring.from_bytes(decode_list(str(subject.get("encodedList", ""))))
