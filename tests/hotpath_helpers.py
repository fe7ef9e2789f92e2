"""Take a hot route (``kernel.hotpath``) out of an app for a while, so that its FastAPI route answers instead."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route


def hot_route(app: FastAPI, path: str) -> Route:
    return next(
        r
        for r in app.router.routes
        if isinstance(r, Route) and not isinstance(r, APIRoute) and r.path == path
    )


@contextmanager
def without_hot_route(app: FastAPI, path: str) -> Iterator[None]:
    routes = app.router.routes
    hot = hot_route(app, path)
    index = routes.index(hot)
    routes.remove(hot)
    try:
        yield
    finally:
        routes.insert(index, hot)
