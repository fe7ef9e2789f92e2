"""Small helpers shared by every party's routers: the engine, the caller, bounded bodies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Cookie, Depends, Header, Request
from sqlalchemy import Engine

from kernel.accounts import Principal, authenticate, principal_for_subject
from kernel.errors import PayloadTooLarge
from kernel.sessions import TOKEN_PREFIX as SESSION_PREFIX
from kernel.sessions import SessionService
from kernel.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def current_principal(
    request: Request,
    engine: EngineDep,
    authorization: Annotated[str | None, Header()] = None,
    imi_staff: Annotated[str | None, Cookie()] = None,
) -> Principal:
    """A service-account bearer token, or a passkey session (``imiw_`` bearer token or the staff cookie)."""
    token = (
        authorization[7:].strip() if authorization and authorization.lower().startswith("bearer ") else None
    )
    session = token if token and token.startswith(SESSION_PREFIX) else (None if token else imi_staff)
    if session:
        sessions: SessionService = request.app.state.sessions
        return principal_for_subject(engine, sessions.resolve(session))
    return authenticate(engine, authorization)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def read_body(request: Request, limit: int) -> bytes:
    """Read a request body, refusing it once it passes ``limit`` bytes (also when sent chunked)."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"Request bodies are limited to {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
