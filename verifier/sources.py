"""The verifier's windows on public material: issuer keys from DID documents, status lists over HTTP."""

from __future__ import annotations

import hashlib
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
    """``IssuerKeys`` over a DID resolver (did:web over HTTP, or a static set from an offline bundle)."""

    def __init__(self, resolver: DidResolver) -> None:
        self._resolver = resolver

    def key_for(self, kid: str) -> PublicKey:
        return resolve_key(kid, self._resolver, purpose="assertionMethod")


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
