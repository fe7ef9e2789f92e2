"""The one exception tree of IMI.

Every failure the service can report is one of these. The API edge (``kernel.problems``) maps them to RFC 9457
``application/problem+json``; nothing else in the code base raises ``HTTPException``::

    ImiError                              problem type = PROBLEM_BASE + slug
    ├── InvalidInput          4xx         the caller sent something untrusted that does not hold up
    │   ├── MalformedInput    400         cannot be parsed (bad JSON, bad base64, bad path, bad number)
    │   ├── VerificationFailed 400/422    parsed, but a signature, proof, digest or rule does not hold
    │   ├── NotFound          404
    │   ├── Conflict          409         the state does not allow it (replayed code, already revoked, ...)
    │   ├── Unauthenticated   401         no or unknown credentials
    │   ├── Forbidden         403         known caller, not allowed
    │   ├── PayloadTooLarge   413
    │   └── RateLimited       429
    └── InfrastructureFailure 503         the database, the disk or a remote party failed; retry later

Subclasses fix ``status``; each raise site chooses a ``slug`` that names the failure precisely
(``"merkle-proof-invalid"``, ``"pin-wrong"``), so that clients can dispatch on the problem ``type``.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "urn:imi:problem:"


class ImiError(Exception):
    """Base of every IMI error. ``slug`` becomes the problem type, ``detail`` the human explanation."""

    status: ClassVar[int] = 500
    default_slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, slug: str | None = None, **extra: Any) -> None:  # noqa: ANN401
        super().__init__(detail)
        self.detail = detail
        self.slug = slug or self.default_slug
        self.extra: dict[str, Any] = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled whole (a verifier's check process sends refusals back): the default pickling would call
        # ``cls(detail)`` and lose slug and extra, or fail where a subclass takes other arguments.
        return (_rebuild, (type(self), self.detail, dict(self.__dict__)))


def _rebuild(cls: type[ImiError], detail: str, state: dict[str, Any]) -> ImiError:
    error = cls.__new__(cls)
    Exception.__init__(error, detail)
    error.__dict__.update(state)
    return error


class InvalidInput(ImiError):
    """The input is untrusted and does not hold up. Never retried as-is."""

    status = 400
    default_slug = "invalid-input"
    title = "Invalid input"


class MalformedInput(InvalidInput):
    status = 400
    default_slug = "malformed"
    title = "Malformed input"


class VerificationFailed(InvalidInput):
    """A signature, proof, digest, binding or policy check failed."""

    status = 400
    default_slug = "verification-failed"
    title = "Verification failed"


class NotFound(InvalidInput):
    status = 404
    default_slug = "not-found"
    title = "Not found"


class Conflict(InvalidInput):
    status = 409
    default_slug = "conflict"
    title = "Conflict with the current state"


class Unauthenticated(InvalidInput):
    status = 401
    default_slug = "unauthenticated"
    title = "Authentication required"


class Forbidden(InvalidInput):
    status = 403
    default_slug = "forbidden"
    title = "Forbidden"


class PayloadTooLarge(InvalidInput):
    status = 413
    default_slug = "too-large"
    title = "Payload too large"


class RateLimited(InvalidInput):
    status = 429
    default_slug = "rate-limited"
    title = "Too many requests"


class InfrastructureFailure(ImiError):
    """Something outside the caller's control failed (database, disk, a remote server). Retry later."""

    status = 503
    default_slug = "unavailable"
    title = "Service unavailable"
