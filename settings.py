"""Runtime settings, read from environment variables and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob caseloop has. Names are the environment variables, case-insensitive."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "caseloop"
    # For a remote cluster (e.g. Temporal Cloud): an API key, or mTLS with a client certificate.
    temporal_api_key: SecretStr | None = None
    # None: TLS when an API key is set (Temporal Cloud refuses plaintext); true/false forces it.
    temporal_tls: bool | None = None
    temporal_tls_client_cert: Path | None = None
    temporal_tls_client_key: Path | None = None
    temporal_tls_server_ca_cert: Path | None = None

    # The dev server `make run` starts (ignored when pointing at a real cluster).
    temporal_ui_port: int = 8233
    var_dir: Path = Path("var")

    # Empty: an embedded SQLite file in VAR_DIR (var/caseloop.db).
    database_url: str = ""
    portal_base_url: str = "http://localhost:8000/portal"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # How long an API request waits for a workflow to accept and project an action.
    api_update_timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'caseloop.db'}"
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
