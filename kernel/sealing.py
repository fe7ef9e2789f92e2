"""Authenticated encryption at rest (AES-256-GCM) and the master key that wraps everything else.

Layout of a sealed blob: ``version(1) || nonce(12) || ciphertext+tag``. The associated data binds a blob to
its row (a key id, a citizen id), so a blob copied to another row does not decrypt.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kernel.errors import InfrastructureFailure, VerificationFailed

_VERSION = b"\x01"
_NONCE = 12
KEY_BYTES = 32


def seal(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` under ``key`` (32 bytes), bound to ``aad``."""
    nonce = secrets.token_bytes(_NONCE)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, blob: bytes, *, aad: bytes) -> bytes:
    """Decrypt a blob from :func:`seal`. Raises ``VerificationFailed`` if it was altered or the key is wrong."""
    if len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
        raise VerificationFailed("Sealed data has an unknown layout.", slug="sealed-data-invalid")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], aad)
    except InvalidTag as exc:
        raise VerificationFailed("Sealed data does not decrypt.", slug="sealed-data-invalid") from exc


def load_master_key(data_dir: Path, configured: str | None) -> bytes:
    """The service master key: from settings if given (base64), else ``<data_dir>/master.key``, created 0600."""
    if configured:
        key = base64.b64decode(configured)
        if len(key) != KEY_BYTES:
            raise InfrastructureFailure("IMI_MASTER_KEY must be 32 bytes, base64.", slug="master-key-invalid")
        return key
    path = data_dir / "master.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write a temporary file and hard-link it into place: concurrent first starts agree on one key, and
        # nobody ever reads a half-written file.
        tmp = path.with_name(f".master.key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise InfrastructureFailure(f"{path} is not a 32-byte key.", slug="master-key-invalid")
    return key


def derive_key(master: bytes, label: str) -> bytes:
    """A 32-byte subkey of the master key for one purpose (HKDF-SHA256, RFC 5869), e.g. ``"issuer-pii"``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=f"imi/{label}".encode()).derive(
        master
    )
