"""A software WebAuthn authenticator and client in one, for tests: ``navigator.credentials.create/get`` in Python.

It follows W3C Web Authentication Level 2 (REC 2021-04-08); section numbers are Level 2's:

- §5.1.3 / §5.1.4 ``[[Create]]`` / ``[[DiscoverFromExternalSource]]``: the client builds the client data,
  hands ``excludeCredentials`` / ``allowCredentials`` to the authenticator, returns the ``PublicKeyCredential``.
- §5.8.1 ``CollectedClientData`` and its serialization (§5.8.1.1): ``{"type","challenge","origin","crossOrigin"}``
  as compact JSON, ``challenge`` the base64url of the options' challenge, ``type`` ``webauthn.create|get``.
- §6.1 authenticator data: ``rpIdHash(32) ‖ flags(1) ‖ signCount(4, big-endian) ‖ attestedCredentialData``;
  flags UP 0x01, UV 0x04, AT 0x40. §6.1.1: the counter grows by ``counter_step`` per assertion (0 = none).
- §6.5.1 attested credential data: ``aaguid(16) ‖ credentialIdLength(2) ‖ credentialId ‖ credentialPublicKey``;
  §6.5.1.1: the EC2 COSE_Key ``{1: 2, 3: -7, -1: 1, -2: x, -3: y}`` (RFC 9052/9053), CTAP2-canonical CBOR.
- §6.3.2 authenticatorMakeCredential: refuses when a credential in ``excludeCredentials`` is present
  (``InvalidStateError``), and replaces a discoverable credential with the same RP id and user handle; keys are
  P-256 (ES256, -7), the only algorithm it offers (``NotAllowedError`` if the RP does not list it).
- §6.5.4 attestation object ``{"fmt", "attStmt", "authData"}`` and §8.7 the ``none`` format (zero AAGUID).
- §6.3.3 authenticatorGetAssertion: with an empty ``allowCredentials`` it picks a discoverable credential of the
  RP; returns the user handle. §6.5.5: ES256 signatures over ``authData ‖ SHA-256(clientData)``
  are ASN.1 DER (RFC 3279 ``Ecdsa-Sig-Value``).
- Level 3 §5.1 ``toJSON()``: ``RegistrationResponseJSON`` / ``AuthenticationResponseJSON``, binary as base64url.

Deliberately *not* done, so that tests can play a broken or hostile client: the check that the RP id is a
registrable suffix of the origin (§5.1.3), and the refusal of ``userVerification: "required"`` by an
authenticator that cannot verify its user (``user_verified=False`` answers without the UV flag instead).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP, FLAG_UV, FLAG_AT = 0x01, 0x04, 0x40
ES256 = -7
NONE_AAGUID = bytes(16)


class InvalidStateError(Exception):
    """The DOMException of §6.3.2: a credential in ``excludeCredentials`` is on this authenticator."""


class NotAllowedError(Exception):
    """The DOMException of §5.1.4: no usable credential (or no algorithm we support)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftCredential:
    """A public key credential source (§4): a discoverable ("resident") P-256 key scoped to one RP id."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        key = {1: 2, 3: ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        return cbor2.dumps(key, canonical=True)


class SoftAuthenticator:
    """``create(options)`` / ``get(options)`` take the options JSON the RP sent and return the response JSON.

    ``rp_id`` and ``origin`` are what the (simulated) browser puts in the authenticator data and client data;
    change them, or ``user_verified`` and ``counter_step``, to simulate phishing pages and weak authenticators.
    """

    def __init__(self, rp_id: str, origin: str, *, user_verified: bool = True, counter_step: int = 1) -> None:
        self.rp_id = rp_id
        self.origin = origin
        self.user_verified = user_verified
        self.counter_step = counter_step
        self.credentials: dict[bytes, SoftCredential] = {}

    def create(self, options: dict[str, Any], *, credential_id: bytes | None = None) -> dict[str, Any]:
        """``navigator.credentials.create({publicKey: options})`` (§5.1.3, §6.3.2); returns RegistrationResponseJSON.
        ``credential_id`` forces the new credential's id (a faulty or hostile authenticator reusing one)."""
        excluded = {unb64url(d["id"]) for d in options.get("excludeCredentials", [])}
        if excluded & self.credentials.keys():
            raise InvalidStateError("a credential of this account is already on this authenticator")
        if ES256 not in [p["alg"] for p in options["pubKeyCredParams"]]:
            raise NotAllowedError("no supported algorithm offered")
        user_handle = unb64url(options["user"]["id"])
        for cid in [
            c for c, v in self.credentials.items() if (v.rp_id, v.user_handle) == (self.rp_id, user_handle)
        ]:
            del self.credentials[cid]  # §6.3.2: one discoverable credential per (RP id, user handle)
        key = ec.generate_private_key(ec.SECP256R1())
        cred = SoftCredential(credential_id or secrets.token_bytes(32), key, self.rp_id, user_handle)
        self.credentials[cred.credential_id] = cred
        attested = (
            NONE_AAGUID + struct.pack(">H", len(cred.credential_id)) + cred.credential_id + cred.cose_key()
        )
        auth_data = self._auth_data(cred, FLAG_AT) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        response = {
            "clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"])),
            "attestationObject": b64url(attestation),
            "transports": ["hybrid", "internal"],
        }
        return self._credential_json(cred, response)

    def get(self, options: dict[str, Any], *, credential_id: bytes | None = None) -> dict[str, Any]:
        """``navigator.credentials.get({publicKey: options})`` (§5.1.4, §6.3.3); returns AuthenticationResponseJSON."""
        allowed = {unb64url(d["id"]) for d in options.get("allowCredentials", [])}
        candidates = [
            c
            for c in self.credentials.values()
            if c.rp_id == self.rp_id and (not allowed or c.credential_id in allowed)
            if credential_id is None or c.credential_id == credential_id
        ]
        if not candidates:
            raise NotAllowedError("no credential for this request")
        cred = candidates[0]
        cred.sign_count += self.counter_step
        auth_data = self._auth_data(cred, 0)
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = cred.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        response = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),  # DER, §6.5.5
            "userHandle": b64url(cred.user_handle),
        }
        return self._credential_json(cred, response)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        return json.dumps(data, separators=(",", ":")).encode()

    def _auth_data(self, cred: SoftCredential, extra_flags: int) -> bytes:
        flags = FLAG_UP | (FLAG_UV if self.user_verified else 0) | extra_flags
        return (
            hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", cred.sign_count)
        )

    @staticmethod
    def _credential_json(cred: SoftCredential, response: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": b64url(cred.credential_id),
            "rawId": b64url(cred.credential_id),
            "type": "public-key",
            "response": response,
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }
