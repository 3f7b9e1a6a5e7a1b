"""Settings for every psa process, read from the environment (prefix ``PSA_``).

Resolution order for the two servers:

1. ``DATABASE_URL`` / ``TEMPORAL_ADDRESS`` (or ``PSA_DATABASE_URL`` / ``PSA_TEMPORAL_ADDRESS``) when set:
   that external server is used and nothing embedded starts;
2. otherwise the addresses recorded by ``psa dev up`` in ``<state_dir>/stack.json``.

The payload-codec key follows the same pattern: ``PSA_CODEC_KEY`` (base64 of 32 bytes) or the key file
the dev stack generates under ``<state_dir>/codec.key``.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from pathlib import Path
from typing import Literal
from uuid import UUID

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed; the message names the setting."""


class Settings(BaseSettings):
    """All configuration. Field names map to ``PSA_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="PSA_", extra="ignore", populate_by_name=True)

    state_dir: Path = Field(default=Path(".psa"), description="embedded state: pgdata, temporal db, outbox")
    database_url: str | None = Field(default=None, validation_alias=AliasChoices("DATABASE_URL", "PSA_DATABASE_URL"))
    temporal_address: str | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_ADDRESS", "PSA_TEMPORAL_ADDRESS")
    )
    temporal_namespace: str = Field(
        default="default", validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "PSA_TEMPORAL_NAMESPACE")
    )
    task_queue: str = Field(
        default="tenant-workflows", validation_alias=AliasChoices("TEMPORAL_TASK_QUEUE", "PSA_TASK_QUEUE")
    )
    codec_key: SecretStr | None = Field(default=None, description="base64 AES-256-GCM key for payloads")

    application_url: str = Field(
        default="http://localhost:3000",
        validation_alias=AliasChoices("APPLICATION_URL", "NEXTAUTH_URL", "PSA_APPLICATION_URL"),
        description="login URL shown in the welcome email",
    )
    product_name: str = Field(default="PSA", description="the psa product's name in its welcome email")
    algadesk_product_name: str = Field(
        default="AlgaDesk", description="the algadesk product's name in its welcome email"
    )
    support_url: str | None = None

    email_provider: Literal["outbox", "smtp"] = Field(
        default="outbox", validation_alias=AliasChoices("EMAIL_PROVIDER", "PSA_EMAIL_PROVIDER")
    )
    email_from: str = "PSA <noreply@psa.localhost>"
    outbox_dir: Path | None = None
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    smtp_timeout_seconds: float = 10.0
    email_lease_seconds: float = Field(
        default=60.0, gt=0, description="how long a claimed email is left to its sender before another re-sends it"
    )
    email_retry_seconds: float = Field(
        default=30.0, gt=0, description="delay before the first retry of a failed email; doubles up to an hour"
    )
    email_max_attempts: int = Field(default=10, ge=1, description="delivery attempts of one email before giving up")

    # -- customer tracking in the management tenant (reference: tenant-customer-tracking-plan.md) ----
    management_tenant_id: UUID | None = Field(
        default=None,
        validation_alias=AliasChoices("PSA_MANAGEMENT_TENANT_ID", "NINEMINDS_TENANT_ID"),
        description="the management tenant's id; wins over the name",
    )
    management_tenant_name: str = Field(
        default="Nine Minds LLC",
        description="the management tenant's name (reference constant), looked up by its slug",
    )
    enable_customer_tracking: bool = Field(
        default=True, validation_alias=AliasChoices("ENABLE_CUSTOMER_TRACKING", "PSA_ENABLE_CUSTOMER_TRACKING")
    )
    customer_tag_name: str = Field(
        default="PSA Customer", validation_alias=AliasChoices("CUSTOMER_TAG_NAME", "PSA_CUSTOMER_TAG_NAME")
    )

    # -- automation actions ---------------------------------------------------------------------
    workflow_client_search_min_query_len: int = Field(
        default=2,
        ge=1,
        validation_alias=AliasChoices(
            "PSA_WORKFLOW_CLIENT_SEARCH_MIN_QUERY_LEN", "WORKFLOW_CLIENT_SEARCH_MIN_QUERY_LEN"
        ),
        description="shortest query clients.search accepts (reference setting name accepted)",
    )
    workflow_contact_search_min_query_len: int = Field(
        default=2,
        ge=1,
        validation_alias=AliasChoices(
            "PSA_WORKFLOW_CONTACT_SEARCH_MIN_QUERY_LEN", "WORKFLOW_CONTACT_SEARCH_MIN_QUERY_LEN"
        ),
        description="shortest query contacts.search accepts (reference setting name accepted)",
    )

    automation_action_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="start-to-close timeout of one run_action attempt: a worker that dies mid-action is noticed, "
        "and the action retried, after it (set by whoever starts the run)",
    )
    worker_sticky_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="how long a workflow task waits for the worker holding that workflow in its cache before any "
        "worker takes it (Temporal's sticky queue timeout): a killed worker's workflows continue after it",
    )
    test_crash_at: str | None = Field(
        default=None,
        description="TESTS ONLY: <point>:<target> where psa worker freezes itself (psa.automation.crash_injection)",
    )
    test_crash_marker: Path | None = Field(default=None, description="TESTS ONLY: the file written at that point")

    # -- HTTP API (psa api) -------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_max_body_bytes: int = Field(default=1_048_576, ge=1, description="larger request bodies get 413")
    api_sse_poll_seconds: float = Field(default=0.5, gt=0, description="how often /events polls the workflow state")

    bcrypt_rounds: int = Field(default=10, ge=4, le=16, description="bcrypt cost; OWASP minimum is 10")
    db_pool_size: int = Field(default=10, ge=1, description="pooled connections per engine (as many again in bursts)")
    api_db_pool_size: int = Field(
        default=32, ge=1, description="pooled connections of the API engine: at least the concurrent requests"
    )

    # -- derived values -------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        """Absolute state directory."""
        return self.state_dir.expanduser().resolve()

    @property
    def stack_file(self) -> Path:
        return self.state_path / "stack.json"

    @property
    def outbox_path(self) -> Path:
        return (self.outbox_dir or self.state_path / "outbox").expanduser().resolve()

    def _stack(self) -> dict:
        try:
            return json.loads(self.stack_file.read_text())
        except FileNotFoundError:
            return {}

    def resolved_database_url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of the database to use.

        Raises ConfigurationError when neither DATABASE_URL nor a running dev stack gives one.
        """
        url = self.database_url or self._stack().get("database_url")
        if not url:
            raise ConfigurationError("no database: set DATABASE_URL or run `psa dev up`")
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    def resolved_temporal_address(self) -> str:
        """host:port of the Temporal frontend. Raises ConfigurationError when unknown."""
        address = self.temporal_address or self._stack().get("temporal_address")
        if not address:
            raise ConfigurationError("no Temporal server: set TEMPORAL_ADDRESS or run `psa dev up`")
        return address

    def resolved_codec_key(self) -> bytes:
        """The 32-byte AES-GCM key. Raises ConfigurationError when missing or not 32 bytes."""
        if self.codec_key is not None:
            raw = self.codec_key.get_secret_value()
        else:
            key_file = self.state_path / "codec.key"
            if not key_file.exists():
                raise ConfigurationError("no payload codec key: set PSA_CODEC_KEY or run `psa dev up`")
            raw = key_file.read_text().strip()
        try:
            key = base64.b64decode(raw, validate=True)
        except ValueError as exc:
            raise ConfigurationError("PSA_CODEC_KEY is not valid base64") from exc
        if len(key) != 32:
            raise ConfigurationError("PSA_CODEC_KEY must decode to 32 bytes (AES-256)")
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
