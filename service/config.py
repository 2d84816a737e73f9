"""Settings of the service, read from the environment (prefix ``ORDERLIFT_``)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from limits import parse_many
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from features.artifact import SIGNING_KEY_VARIABLES

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything the service can be told; built once in the app factory and passed in."""

    model_config = SettingsConfigDict(
        env_prefix="ORDERLIFT_", extra="ignore", frozen=True, populate_by_name=True
    )

    model_uri: str | None = Field(None, description="A model artifact directory, or models:/NAME@ALIAS.")
    redis_url: str | None = Field(
        None, description="Redis for the cache (and events, unless events_redis_url); unset: in-process."
    )
    events_redis_url: str | None = Field(
        None,
        description="Redis for the event stream and live history, apart from the cache's (never evicted).",
    )
    event_id_required: bool = Field(
        False,
        description="Refuse events without event_id (422 per event): retries after a 503 stay exact.",
    )
    event_retention_days: float = Field(
        90.0, gt=0, description="Days of events the Redis stream keeps (older ones are trimmed)."
    )
    cache_ttl_s: float = Field(300.0, gt=0, description="Seconds a cached answer lives.")
    cache_max_entries: int = Field(50_000, gt=0, description="Bound of the in-process cache, in entries.")
    cache_max_bytes: int = Field(
        256 << 20, ge=1 << 20, description="Bound of the in-process cache, in bytes of keys and answers."
    )
    redis_timeout_s: float = Field(0.05, gt=0, description="Socket timeout of Redis calls.")
    redis_retry_after_s: float = Field(1.0, gt=0, description="Pause after a Redis failure.")
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (), repr=False, description="Keys for /v1 (comma-separated)."
    )
    admin_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (), repr=False, description="Admin keys: everything, plus reload, /metrics and /readyz details."
    )
    marketer_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (), repr=False, description="Marketer keys: bundles, the experiment report and the page's login."
    )
    rate_limit_storefront: str = Field(
        "2000/second", description="Requests per storefront key (limits syntax, e.g. 100/second;5000/minute)."
    )
    rate_limit_marketer: str = Field("20/second", description="Requests per marketer key.")
    rate_limit_admin: str = Field("100/second", description="Requests per admin key.")
    rate_limit_login: str = Field("10/minute", description="Page login attempts per client address.")
    max_body_bytes: int = Field(
        1 << 20, ge=1024, le=64 << 20, description="Largest request body read (413 above, before reading)."
    )
    max_cart_items: int = Field(
        2_000, ge=1, le=10_000, description="Most distinct lines a cross-sell cart may hold (422 above)."
    )
    environment: Literal["development", "production"] = Field(
        "development", description="production: refuse to run without keys (unless allow_open)."
    )
    allow_open: bool = Field(
        False, description="Serve without keys although deployed (production, or a non-loopback bind)."
    )
    local_workers: bool = Field(
        False,
        description="Several workers without Redis, each with its own cache, live history and event ids.",
    )
    verify_artifact: bool = Field(True, description="Check the model artifact's checksums at load.")
    swap_grace_s: float = Field(
        60.0,
        ge=0,
        description="After a reload, answer misses from the old model's cached answers this long.",
    )
    artifact_signing_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(*SIGNING_KEY_VARIABLES),
        description="Serve only model artifacts signed with this key (training signs with the same one).",
    )
    variants: str | None = Field(
        None,
        description="A/B split over model aliases, e.g. production:90,candidate:10 (needs models:/ URI).",
    )
    reload_interval_s: float = Field(30.0, ge=0, description="Poll MODEL_URI's alias this often; 0: never.")
    access_log: Literal["all", "errors"] = Field(
        "all", description="Log every request, or only errors and requests slower than 100 ms."
    )
    event_log: Path = Field(Path("events/events.jsonl"), description="Embedded mode's event log file.")
    rules_file: Path | None = Field(
        None,
        description="Without Redis: the merchandising rules' file (default: rules.json beside event_log).",
    )
    trending_window_days: int = Field(
        7, ge=1, le=28, description="Trending compares the last this many days with the 28 days before."
    )
    trending_refresh_s: float = Field(
        30.0,
        ge=0,
        description="Rebuild trending items from live events at most this often (0: every request).",
    )
    min_margin: float = Field(
        0.10, ge=0, lt=1, description="A bundle's suggested discount never takes its margin below this share."
    )
    mlflow_tracking_uri: str = Field(
        "sqlite:///mlflow.db",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "ORDERLIFT_MLFLOW_TRACKING_URI"),
        description="Where models:/ URIs are resolved (MLflow's own variable).",
    )

    @field_validator("rate_limit_storefront", "rate_limit_marketer", "rate_limit_admin", "rate_limit_login")
    @classmethod
    def _rate(cls, value: str) -> str:
        """Refuse a rate that the limits library cannot read."""
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate such as 100/second or 10/second;500/minute: {value!r}") from exc
        return value

    @field_validator("api_keys", "admin_keys", "marketer_keys", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """Accept a comma-separated string."""
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @property
    def rules_path(self) -> Path:
        """Return the rules' file when there is no Redis (workers share it)."""
        return self.rules_file or self.event_log.with_name("rules.json")

    @property
    def auth_enabled(self) -> bool:
        """Return whether /v1 routes need a key."""
        return bool(self.api_keys or self.admin_keys or self.marketer_keys)

    def open_refusal(self, host: str = "127.0.0.1") -> str | None:
        """Return why serving on ``host`` would be open to the world (refused), or None.

        Deployed means ``environment=production`` or a bind beyond loopback; deployed without keys
        is refused unless ``allow_open`` (``--allow-open``) says it is meant.
        """
        if self.auth_enabled or self.allow_open:
            return None
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback and self.environment != "production":
            return None
        why = "ORDERLIFT_ENVIRONMENT=production" if self.environment == "production" else f"--host {host}"
        return (
            f"refusing to serve without keys ({why}): set ORDERLIFT_API_KEYS (and ORDERLIFT_ADMIN_KEYS), "
            "or pass --allow-open (ORDERLIFT_ALLOW_OPEN=1) if this service is meant to be open"
        )
