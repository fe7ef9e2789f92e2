"""The software authenticator lives in ``imi.soft_authenticator`` (the demo uses it too)."""

from imi.soft_authenticator import (
    InvalidStateError,
    NotAllowedError,
    SoftAuthenticator,
    SoftCredential,
    b64url,
    unb64url,
)

__all__ = [
    "InvalidStateError",
    "NotAllowedError",
    "SoftAuthenticator",
    "SoftCredential",
    "b64url",
    "unb64url",
]
