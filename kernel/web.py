"""Small helpers shared by every party's routers: the engine, the caller, bounded bodies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Engine

from kernel.accounts import Principal, authenticate
from kernel.errors import PayloadTooLarge
from kernel.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def current_principal(engine: EngineDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
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
