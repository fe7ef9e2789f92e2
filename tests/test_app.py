"""The foundation: health, readiness, OpenAPI, problem+json for unknown routes, body limits, settings."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kernel.settings import Settings


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_openapi_lists_the_log(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/log/checkpoint" in paths
    assert "/log/entries" in paths


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    for resp, status in ((client.get("/nowhere"), 404), (client.put("/healthz"), 405)):
        assert resp.status_code == status
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["status"] == status


def test_oversized_body_is_413(client: TestClient) -> None:
    resp = client.post(
        "/log/entries", content=b"x" * (65 * 1024), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 413
    assert resp.json()["type"] == "urn:imi:problem:too-large"


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMI_PUBLIC_URL", "https://id.district.example")
    s = Settings()
    assert s.public_host == "id.district.example"
    assert s.resolved_log_origin == "id.district.example/log"
    assert s.resolved_database_url.startswith("sqlite:///")
