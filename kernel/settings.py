"""Settings, read once from the environment (``IMI_`` prefix) by the app factory and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Party = Literal["issuer", "verifier", "wallet", "ledger"]
ALL_PARTIES: tuple[Party, ...] = ("issuer", "verifier", "wallet", "ledger")


class Settings(BaseSettings):
    """Every knob of IMI. Construct with ``Settings()`` at the edge (CLI, app factory); never at import time."""

    model_config = SettingsConfigDict(env_prefix="IMI_", frozen=True, extra="ignore")

    data_dir: Path = Field(
        default=Path("./imi-data"), description="Key files and the default SQLite database."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/imi.sqlite3"
    )
    public_url: str = Field(default="http://localhost:8000", description="Base URL in DIDs and metadata.")
    master_key: str | None = Field(
        default=None,
        description="base64 32-byte key wrapping private keys and data keys; default: <data_dir>/master.key",
    )
    log_origin: str | None = Field(
        default=None, description="Checkpoint origin line; default from public_url."
    )
    log_batch_interval: float = Field(default=0.2, gt=0, le=1.0, description="Seconds between integrations.")
    log_batch_max: int = Field(default=50_000, gt=0, description="Most entries integrated in one batch.")
    log_witnesses: tuple[str, ...] = Field(default=(), description="Witness vkeys (C2SP note verifier keys).")
    log_witness_threshold: int = Field(default=0, ge=0)
    request_max_bytes: int = Field(default=64 * 1024, gt=0)
    verifier_trusted_issuers: tuple[str, ...] = Field(
        default=(), description="Issuer DIDs a verifier accepts; default: this deployment's own issuer DID."
    )
    verifier_log_vkey: str | None = Field(
        default=None, description="Trusted log key; default: this log's key."
    )
    verifier_reference_origins: tuple[str, ...] = Field(
        default=(), description="Origins a reference QR may point to; default: the public URL."
    )
    verifier_require_anchor: bool = False
    verifier_history_days: int = Field(default=90, ge=1, description="Retention of the verification record.")
    verifier_check_processes: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Processes that check scanned QR codes beside the web worker (0: its own committer thread).",
    )
    verifier_bundle: Path | None = Field(
        default=None, description="Offline trust bundle from `imi verifier sync`."
    )
    verifier_bundle_key: str | None = Field(
        default=None, description="JWK thumbprint of the key that must have signed the offline bundle."
    )
    verifier_bundle_max_age: int = Field(
        default=86_400, gt=0, le=30 * 86_400, description="Seconds a bundle lives."
    )
    wallet_trusted_issuers: tuple[str, ...] = Field(
        default=(), description="Issuer origins whose offers the wallet redeems; default: the public URL."
    )
    wallet_verifiers: tuple[str, ...] = Field(
        default=(),
        description="Verifier services (base URLs) the wallet asks what they recorded about the citizen's "
        "credentials (kiosk scans of QR codes); default: the public URL.",
    )
    rate_limits: bool = Field(
        default=True, description="Per-client rate limits on sign-in, PIN and token routes."
    )
    rate_limit_exempt: tuple[str, ...] = Field(
        default=(), description="Client networks (CIDR) never limited: the deployment's own egress."
    )
    log_level: str = "INFO"
    parties: tuple[Party, ...] = ALL_PARTIES

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'imi.sqlite3').as_posix()}"

    @property
    def public_host(self) -> str:
        """Host (and port) of the public URL: the ``did:web`` identifier and the default log origin use it."""
        return urlsplit(self.public_url).netloc

    @property
    def resolved_log_origin(self) -> str:
        if self.log_origin:
            return self.log_origin
        parts = urlsplit(self.public_url)
        return f"{parts.netloc}{parts.path.rstrip('/')}/log"
