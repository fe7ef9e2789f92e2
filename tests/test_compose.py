"""No Docker engine runs here, so check docker-compose.yml and the Dockerfile against what the app reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_compose_wires_postgres_and_imi_with_known_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"db", "imi"}
    env = services["imi"]["environment"]
    known = {f"IMI_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= known, f"unknown settings: {set(env) - known}"
    db_env = services["db"]["environment"]
    url = env["IMI_DATABASE_URL"]
    expected = f"postgresql://{db_env['POSTGRES_USER']}:{db_env['POSTGRES_PASSWORD']}@db:5432/{db_env['POSTGRES_DB']}"
    assert url == expected
    assert services["imi"]["depends_on"]["db"]["condition"] == "service_healthy"
    settings = Settings(**{k.removeprefix("IMI_").lower(): v for k, v in env.items()})
    assert settings.resolved_database_url == url
    assert str(settings.data_dir) == env["IMI_DATA_DIR"]
    port = services["imi"]["ports"][0].split(":")[1]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"EXPOSE {port}" in dockerfile
    assert '"--port", "8000"' in dockerfile
    for package in ("kernel", "imi", "ledger", "issuer", "verifier", "wallet_api", "schemas", "migrations"):
        assert f"COPY {package} {package}" in dockerfile
