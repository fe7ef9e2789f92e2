"""Outbound HTTP clients (status lists, DID documents, webhooks, a wallet's presentations).

Every ``httpx.Client`` builds its own TLS context by default, and loading the system's CA bundle costs about
50 ms of CPU each time: three clients per app made that a fifth of an app's start. The context is built once
per process and shared; an ``ssl.SSLContext`` may serve many connections and threads at once.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The default verifying TLS context (system CA bundle, hostname checks), built on first use."""
    return ssl.create_default_context()


def http_client(**options: Any) -> httpx.Client:  # noqa: ANN401 - httpx.Client's own keyword arguments
    """An ``httpx.Client`` with ``options`` that verifies TLS with the shared context."""
    return httpx.Client(verify=tls_context(), **options)
