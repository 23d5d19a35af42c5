"""Runtime settings, read from environment variables and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

# What a chat attachment may be: documents, images, spreadsheets and e-mails.
DEFAULT_ATTACHMENT_TYPES = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/plain",
    "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-outlook",
    "message/rfc822",
)


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

    # Workflow payloads are encrypted (codec.py): "<id>:<base64 32 bytes>,..."; the first key
    # encrypts, all decrypt. Unset: caseloop refuses to connect to Temporal, unless
    # PAYLOAD_ENCRYPTION=false (payloads in clear). `make run` generates a dev key in VAR_DIR.
    payload_keys: SecretStr | None = None
    payload_encryption: bool = True
    # The secret path segment of the Temporal Web UI's codec endpoint
    # (/api/ops/codec/ui/<token>); unset: that endpoint is off and only ops keys decode.
    codec_ui_token: SecretStr | None = None
    # Browser origins (the Temporal Web UI's) allowed to call the codec endpoint.
    codec_cors_origins: list[str] = Field(default_factory=list)

    # The dev server `make run` starts (ignored when pointing at a real cluster).
    temporal_ui_port: int = 8233
    # Where ops open a case's workflow from the portal; empty: the dev server's UI on
    # localhost:TEMPORAL_UI_PORT.
    temporal_ui_url: str = ""
    var_dir: Path = Path("var")

    # Empty: an embedded SQLite file in VAR_DIR (var/caseloop.db).
    database_url: str = ""
    # Connections per process (API or worker) to DATABASE_URL: kept open, and more under load.
    database_pool_size: int = Field(default=5, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    portal_base_url: str = "http://localhost:8000/portal"
    # Signs the portal's session cookies, CSRF tokens and set-password links (at least 32
    # characters). Unset: the portal answers 503 and says so; `make run` generates a dev key.
    portal_secret_key: SecretStr | None = None
    # How long a portal session lasts after sign-in.
    portal_session_hours: float = Field(default=12.0, gt=0)
    # How long a set-password link printed by `caseloop user create` works.
    portal_password_link_hours: float = Field(default=72.0, gt=0)
    # Failed sign-ins allowed within PORTAL_SIGN_IN_WINDOW_MINUTES, per account and per
    # client address, before that account or address is locked for as long again.
    portal_max_failures_per_account: int = Field(default=5, ge=1)
    portal_max_failures_per_address: int = Field(default=20, ge=1)
    portal_sign_in_window_minutes: float = Field(default=15.0, gt=0)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # How long an API request waits for a workflow to accept and project an action.
    api_update_timeout_seconds: float = Field(default=30.0, gt=0)

    # How long an API process trusts an API key the database verified (api/keycache.py): a
    # revoked key or deactivated user is refused at most this long after; 0 asks every time.
    api_key_cache_seconds: float = Field(default=5.0, ge=0)

    # Requests per minute and API key (token bucket, per API process); 0 turns limiting off.
    rate_limit_per_minute: int = Field(default=600, ge=0)
    rate_limit_burst: int = Field(default=120, ge=1)

    # The largest request body the API reads (413 payload_too_large beyond it); a multipart
    # upload may be ATTACHMENT_MAX_BYTES larger.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)

    # The worker (worker.py; the defaults are the Temporal SDK's). Cached workflows answer their
    # next task without replaying history; each open case in the cache costs memory
    # (docs/operations.md, "Worker capacity"). Concurrency: tasks in hand at once, per kind.
    worker_max_cached_workflows: int = Field(default=1000, ge=0)
    worker_max_concurrent_workflow_tasks: int = Field(default=100, ge=2)
    worker_max_concurrent_activities: int = Field(default=100, ge=1)
    worker_max_concurrent_local_activities: int = Field(default=100, ge=1)
    # The nightly chat cleanup (activities/cleanup.py), per page: classifications at once (an
    # LLM-backed classifier's requests in flight) and dismissal updates in flight.
    cleanup_classify_concurrency: int = Field(default=16, ge=1)
    cleanup_dismiss_concurrency: int = Field(default=8, ge=1)
    # The cleanup's model (activities/reply_model.py): any OpenAI-compatible chat-completions
    # endpoint; empty base URL: the built-in offline classifier, and nothing leaves the platform.
    cleanup_model_base_url: str = ""
    cleanup_model: str = ""
    cleanup_model_api_key: SecretStr | None = None
    # "Authorization" sends "Bearer <key>"; any other header gets the key as is ("api-key": Azure).
    cleanup_model_api_key_header: str = "Authorization"
    cleanup_model_timeout_seconds: float = Field(default=30.0, gt=0)
    # A task is dismissed only on "no reply expected" with at least this confidence.
    cleanup_model_min_confidence: float = Field(default=0.8, ge=0, le=1)
    # Model calls per night at most; the tasks beyond wait for the next night.
    cleanup_model_max_calls_per_night: int = Field(default=5000, ge=0)
    # Webhook deliveries delivered or given up longer ago than this are pruned (nightly).
    webhooks_retention_days: float = Field(default=30.0, gt=0)
    # The orphan check (domain/orphans.py) reports a running case whose next timer
    # (``NextStepAt``) passed longer ago than this: it should have fired and moved the case.
    orphan_stalled_after_minutes: float = Field(default=60.0, gt=0)

    # Chat attachments: the bytes live in a blob store (a local directory by default), never in
    # workflow history. Empty BLOB_DIR: VAR_DIR/blobs.
    blob_dir: Path | None = None
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    attachment_content_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ATTACHMENT_TYPES), min_length=1
    )

    # Webhook deliveries (outbound.py) go only to https URLs on public addresses; true also lets
    # exactly http(s)://localhost, 127.0.0.1 and [::1] through, for development and tests.
    webhooks_allow_localhost: bool = Field(
        default=False,
        validation_alias=AliasChoices(
            "webhooks_allow_localhost", "caseloop_webhooks_allow_localhost"
        ),
    )
    # E-mail (activities/mail.py) through SMTP_HOST:SMTP_PORT. SMTP_SECURITY: "starttls"
    # (required, the submission port 587), "tls" (implicit TLS, port 465) or "none" (plaintext:
    # local sinks only). SMTP_USER/SMTP_PASSWORD: when the server wants a login. Empty SMTP_HOST:
    # e-mails wait (the activity retries) until one is set; `make run` points it at its sink.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str = ""
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    # The From of every e-mail; its domain is also the Message-IDs' domain.
    mail_from: str = "caseloop <no-reply@caseloop.localhost>"
    # Signs the unsubscribe link of every e-mail (mail/unsubscribe.py; at least 32 characters),
    # read by the worker (which builds the links) and the API (which honours them). Unset:
    # PORTAL_SECRET_KEY signs them. Changing it revokes every link sent before.
    unsubscribe_secret_key: SecretStr | None = None
    # The local sink `make run` starts (mail/sink.py), keeping messages in VAR_DIR/mail.
    mail_sink_port: int = Field(default=8025, ge=1, le=65535)
    # The digests (activities/digests.py): the local hour from which a partner user's daily
    # summary goes out (their time zone), and the e-mails one page has in flight at once.
    daily_summary_hour: int = Field(default=7, ge=0, le=23)
    digest_send_concurrency: int = Field(default=16, ge=1)

    # Tracing (observability/tracing.py): off unless an OTLP/HTTP endpoint is set, by the
    # standard OpenTelemetry variables: OTEL_EXPORTER_OTLP_ENDPOINT (its /v1/traces) or
    # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is); OTEL_EXPORTER_OTLP_HEADERS is read by the
    # exporter itself. OTEL_SERVICE_NAME: default caseloop-api / caseloop-worker.
    otel_exporter_otlp_endpoint: str = ""
    otel_exporter_otlp_traces_endpoint: str = ""
    otel_service_name: str = ""
    # Logs (observability/logs.py): "text" lines for people, or "json": one JSON object per
    # line with the request, case and workflow ids where they apply. LOG_LEVEL: INFO, DEBUG, ...
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Prometheus /metrics (observability/), each process on a port of its own, on METRICS_HOST
    # only (never the public API port): the API's (and its HTTP metrics), the worker's (with the
    # Temporal SDK's metrics and /healthz). 0 turns one off. The worker computes the domain
    # gauges (tasks, backlogs) every METRICS_COLLECT_SECONDS (0: never).
    metrics_host: str = "127.0.0.1"
    api_metrics_port: int = Field(default=9464, ge=0, le=65535)
    worker_metrics_port: int = Field(default=9465, ge=0, le=65535)
    metrics_collect_seconds: float = Field(default=60.0, ge=0)

    @field_validator(
        "blob_dir",
        "payload_keys",
        "codec_ui_token",
        "portal_secret_key",
        "unsubscribe_secret_key",
        "smtp_password",
        "cleanup_model_api_key",
        mode="before",
    )
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("codec_ui_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        # It is the only credential of that endpoint: it must not be guessable.
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("CODEC_UI_TOKEN must have at least 32 characters")
        return value

    @field_validator("portal_secret_key", "unsubscribe_secret_key")
    @classmethod
    def _long_portal_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError(f"{(info.field_name or '').upper()} must have at least 32 characters")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'caseloop.db'}"
        if self.blob_dir is None:
            self.blob_dir = self.var_dir / "blobs"
        self.attachment_content_types = [t.strip().lower() for t in self.attachment_content_types]
        if self.cleanup_model_base_url and not self.cleanup_model:
            raise ValueError("CLEANUP_MODEL must name the model when CLEANUP_MODEL_BASE_URL is set")
        return self

    def workflow_ui_url(self, workflow_id: str) -> str:
        """The Temporal Web UI page of a workflow (its latest run)."""
        base = (self.temporal_ui_url or f"http://localhost:{self.temporal_ui_port}").rstrip("/")
        return f"{base}/namespaces/{self.temporal_namespace}/workflows/{workflow_id}"

    @property
    def unsubscribe_secret(self) -> str | None:
        """What signs unsubscribe links: UNSUBSCRIBE_SECRET_KEY, else PORTAL_SECRET_KEY; None
        when neither is set (e-mails then link to the preferences page, behind sign-in)."""
        key = self.unsubscribe_secret_key or self.portal_secret_key
        return key.get_secret_value() if key is not None else None

    @property
    def mail_directory(self) -> Path:
        """Where the local sink keeps the messages it receives."""
        return self.var_dir / "mail"

    @property
    def blob_directory(self) -> Path:
        """Where ``LocalBlobStore`` keeps attachments (set by the validator when left empty)."""
        assert self.blob_dir is not None
        return self.blob_dir


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
