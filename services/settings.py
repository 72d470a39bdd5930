"""Typed settings, read once from the environment and `.env`, validated at startup.

The variable names are the ones existing deployments already set (see the README's
configuration table), so they are not prefixed.
"""

import hashlib
import hmac
import ipaddress
import json
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

Environment = Literal["dev", "staging", "production"]

_ENVIRONMENT_ALIASES = {
    "dev": "dev",
    "development": "dev",
    "local": "dev",
    "staging": "staging",
    "stage": "staging",
    "production": "production",
    "prod": "production",
}

# The domains Auth0 gives tenants ({tenant}.auth0.com, {tenant}.{region}.auth0.com; Private
# Cloud tenants live under auth0app.com). Custom domains are anything else.
CANONICAL_AUTH0_SUFFIXES = (".auth0.com", ".auth0app.com")

_PORTAL_URLS: dict[str, str] = {
    "dev": "https://dev.portal.aai.test.biocommons.org.au",
    "staging": "https://staging.portal.aai.test.biocommons.org.au",
    "production": "https://portal.access.services.biocommons.org.au",
}

# Development defaults. They let the service start with nothing configured and are
# refused in production, which is why they are named here rather than inlined.
DEV_AUTH0_DOMAIN = "http://127.0.0.1:9010"
DEV_AUDIENCE = "https://api.aai-backend.local"
DEV_MANAGEMENT_ID = "dev-management-client"
DEV_MANAGEMENT_SECRET = "dev-management-secret"  # noqa: S105 - a known placeholder
DEV_PASSWORD_CLIENT_ID = "dev-password-client"  # noqa: S105 - an id, not a password
DEV_PASSWORD_CLIENT_SECRET = "dev-password-secret"  # noqa: S105 - a known placeholder
DEV_JWT_SECRET = "dev-only-session-secret-change-me"  # noqa: S105 - a known placeholder
DEV_ACTION_SECRET = "dev-only-action-token-secret-change-me"  # noqa: S105 - a known placeholder
DEV_PORTAL_ORIGIN = "http://localhost:4200"
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./aai-backend.db"

_DRIVER_FOR_SCHEME = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
}


class ConfigError(RuntimeError):
    """Raised when the configuration cannot be used; the message names the variables."""


def normalise_origin(value: str) -> str:
    """A bare host means https; a value with a scheme (an emulator) is used as-is."""
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = f"https://{value}"
    return value


def to_async_url(raw: str) -> URL:
    """Map plain or sync-driver URLs onto the async drivers this service runs on."""
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw.removeprefix("postgres://")
    url = make_url(raw)
    driver = _DRIVER_FOR_SCHEME.get(url.drivername)
    if driver is not None:
        url = url.set(drivername=driver)
    return url


RECAPTCHA_HOSTS = frozenset({"www.google.com", "www.recaptcha.net"})


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    environment: Environment = "dev"

    # Auth0
    auth0_domain: str = DEV_AUTH0_DOMAIN
    auth0_custom_domain: str | None = None
    auth0_issuer: str | None = None
    auth0_audience: str = DEV_AUDIENCE
    # The old backend's setting, kept so its deployments start: access tokens are RS256 and
    # nothing else is accepted (an HS256 or "none" token must never pass), so any other
    # value is refused at start rather than silently ignored.
    auth0_algorithms: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["RS256"])
    auth0_management_id: str = DEV_MANAGEMENT_ID
    auth0_management_secret: SecretStr = SecretStr(DEV_MANAGEMENT_SECRET)
    auth0_db_connection: str = "Username-Password-Authentication"
    # The database connection's longest username (Auth0's default 15; configurable up to
    # 128 on the connection): refused here as a field error rather than by Auth0.
    auth0_username_max_length: int = Field(default=15, ge=3, le=128)
    # The application the current password is checked with (the password-realm grant),
    # never the management client: that grant on a machine-to-machine client with
    # Management API scopes would turn a leaked secret into both. See README, Tenant setup.
    auth0_password_client_id: str = DEV_PASSWORD_CLIENT_ID
    auth0_password_client_secret: SecretStr = SecretStr(DEV_PASSWORD_CLIENT_SECRET)
    # Current-password checks per signed-in user per minute, before Auth0 is asked.
    password_checks_per_minute: int = Field(default=5, ge=1, le=100)
    auth0_roles_claim: str = "https://biocommons.org.au/roles"
    auth0_role_namespace: str = "biocommons"
    admin_roles: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # At API start, check the tenant once in the background (token, grant scopes, a read,
    # the login domain's issuer): logged, and a configuration fault makes /health/ready 503.
    auth0_startup_check: bool = True
    auth0_mgmt_rps: float = Field(default=10.0, gt=0)
    auth0_mgmt_burst: int = Field(default=10, ge=1)
    # Every process reads the X-RateLimit-* headers of Auth0's answers and holds its calls
    # to a bucket once this few requests are left in it, so the API workers, replicas and
    # the scheduler share the tenant's limit instead of each spending it to 429s.
    auth0_rate_reserve: int = Field(default=1, ge=0, le=100)
    # The tenant's subscription, whose Management API buckets every process shares through
    # Postgres (services/auth0/budget.py); unset: each process paces itself only.
    auth0_plan: Literal["free", "self-service", "enterprise", "enterprise-nonprod"] | None = None
    auth0_max_retries: int = Field(default=4, ge=0, le=10)
    auth0_timeout_s: float = Field(default=10.0, gt=0)
    # How long a request waits for Auth0 capacity (its turn in the client-side bucket, or
    # a 429's Retry-After) before answering 503 with Retry-After. The scheduler waits longer.
    auth0_max_wait_s: float = Field(default=3.0, ge=0)
    # The most a request-path Auth0 call may take, pacing, retries and backoff included,
    # before it is a 503 (0: no bound). One number for every call the API makes; the
    # scheduler's jobs have none. Must cover one whole Auth0 round trip.
    auth0_request_deadline_s: float = Field(default=3.0, ge=0, le=60)
    # The share of the Management API rate that calls made for anonymous callers may use.
    auth0_anonymous_share: float = Field(default=0.25, ge=0, le=1)
    # After this many Auth0 failures in a row, calls fail at once for the cool-off (0: off).
    auth0_breaker_threshold: int = Field(default=5, ge=0, le=100)
    auth0_breaker_cooloff_s: float = Field(default=10.0, gt=0, le=300)
    auth0_jwks_ttl_s: float = Field(default=600.0, gt=0)
    auth0_jwks_cooldown_s: float = Field(default=30.0, ge=0)
    auth0_token_leeway_s: int = Field(default=30, ge=0, le=300)

    # Web
    jwt_secret_key: SecretStr = SecretStr(DEV_JWT_SECRET)
    # Unset: the local portal in dev (http://localhost:4200), else the environment's portal.
    cors_allowed_origins: Annotated[list[str] | None, NoDecode] = None
    enable_admin_dashboard: bool = False
    # A dashboard session's role (in Auth0) and account (here) are confirmed again at
    # least this often; the session ends when either is gone.
    db_admin_recheck_s: int = Field(default=300, ge=0, le=300)
    # Larger request bodies are refused with 413 before anything reads them.
    max_request_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # The dashboard's own Auth0 application (authorization-code flow); unset: the
    # management client is used.
    admin_client_id: str | None = None
    admin_client_secret: SecretStr | None = None
    enable_prometheus_metrics: bool = False
    # /docs, /redoc and /openapi.json; unset: on, except in production.
    enable_api_docs: bool | None = None
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDR networks:
    # the load balancer's subnets). The client address is the right-most hop that is not
    # one of them, so what a client writes into the header itself never counts. "*"
    # (believe anyone) is refused in production: it let a client choose its own address
    # and rotate past every rate limit.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1"]
    )
    # Logs: JSON lines (one object per line, request id included) or readable text;
    # unset means JSON in production and text elsewhere.
    log_format: Literal["json", "text"] | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    aai_portal_url: str | None = None
    recaptcha_secret: SecretStr | None = None

    # Scheduler (run_scheduler.py)
    sync_user_source: Literal["auto", "export", "list"] = "auto"
    sync_max_delete_fraction: float = Field(default=0.05, ge=0, le=1)
    # The membership sync revokes a role's memberships only up to this share of its
    # approved members at once (more is held and reported: an empty or cut-short member
    # list must not revoke everyone); up to SYNC_REVOKE_FLOOR revocations per role always
    # pass, so small groups work. The catalog sync removes platforms and groups up to the
    # same share of the catalog (at least one) per run.
    sync_max_revoke_fraction: float = Field(default=0.1, ge=0, le=1)
    sync_revoke_floor: int = Field(default=10, ge=0)
    sync_roles_interval_s: int = Field(default=900, ge=10)
    sync_users_full_interval_s: int = Field(default=3600, ge=60)
    sync_users_incremental_interval_s: int = Field(default=300, ge=10)
    # Auth0's user search is eventually consistent: a change shows in `q=updated_at:[…]`
    # only after a lag. Each incremental run looks back this far before the last
    # successful run's start, so a change the index had not shown then is read now.
    sync_search_lag_s: int = Field(default=60, ge=0)
    sync_memberships_interval_s: int = Field(default=900, ge=10)
    sync_outbox_interval_s: int = Field(default=30, ge=1)
    sync_otp_cleanup_interval_s: int = Field(default=3600, ge=10)
    sync_expire_unverified_interval_s: int = Field(default=3600, ge=60)
    # Sign-ups of the database connection that never verified their address (and never
    # signed in) are deleted after this many days, freeing the address for its owner.
    unverified_signup_expiry_days: int = Field(default=30, ge=1, le=3650)
    sync_misfire_grace_s: int = Field(default=900, ge=1)
    sync_role_concurrency: int = Field(default=4, ge=1, le=32)
    outbox_max_attempts: int = Field(default=10, ge=1)
    catalog_short_names: dict[str, str] = Field(default_factory=dict)
    # Auth0 pushes changes (README "Event and Log Streams"): the inboxes answer only when
    # their secret is set (the stream's bearer token, or the basic-auth password), and
    # refuse bodies over EVENTS_MAX_BODY_BYTES. The scheduler applies the inbox every
    # EVENTS_APPLY_INTERVAL_S, up to EVENTS_APPLY_BATCH events a run; an event that fails
    # EVENTS_MAX_ATTEMPTS times is parked.
    events_stream_secret: SecretStr | None = None
    log_stream_secret: SecretStr | None = None
    events_max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    events_apply_interval_s: float = Field(default=0.5, gt=0, le=60)
    events_apply_batch: int = Field(default=500, ge=1, le=10000)
    events_max_attempts: int = Field(default=5, ge=1)
    # While a stream is healthy the polling it replaces runs only this often, as a net: the
    # users search (Event Streams), the full users sync (Event Streams) and the membership
    # sync (the Log Stream). A stream is unhealthy when nothing came for EVENTS_SILENCE_S
    # while the net found changes, or its oldest unapplied event is older than
    # EVENTS_MAX_LAG_S; then the scheduler polls at the usual intervals and says so.
    events_net_incremental_interval_s: int = Field(default=1800, ge=60)
    events_net_full_interval_s: int = Field(default=6 * 3600, ge=300)
    events_net_memberships_interval_s: int = Field(default=3600, ge=60)
    events_silence_s: int = Field(default=3600, ge=60)
    events_max_lag_s: int = Field(default=60, ge=5)
    # Applied and ignored events are kept this long for ops, then deleted (parked ones and
    # deletions stay: a deletion outranks updates delivered after it).
    events_retention_days: int = Field(default=7, ge=1)

    # Registration
    registration_default_platforms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["bpa_data_portal", "galaxy"]
    )
    # Bundle id → {"group": <short group id>, "platforms": [<platform ids granted with it>]}.
    registration_bundles: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"tsi": {"group": "tsi", "platforms": []}}
    )
    recaptcha_verify_url: str = "https://www.google.com/recaptcha/api/siteverify"
    # Auth0 Actions sign short-lived tokens with this shared secret (HS256) when they send
    # a user to this API; kept apart from every other secret.
    auth0_action_token_secret: SecretStr = SecretStr(DEV_ACTION_SECRET)
    auth0_action_token_audience: str = "aai-backend-actions"  # noqa: S105 - an audience name
    # Transition from the old backend: also accept the session tokens its deployed Actions
    # sign (HS256 with AUTH0_MANAGEMENT_SECRET, only `exp`) until the Actions are redeployed
    # with AUTH0_ACTION_TOKEN_SECRET. Logged at start and on every use; off by default.
    auth0_action_legacy_tokens: bool = False
    enable_sbp_registration: bool | None = None  # default: on, except in production
    sbp_allowed_email_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "uq.edu.au",
            "unimelb.edu.au",
            "monash.edu",
            "sydney.edu.au",
            "anu.edu.au",
        ]
    )
    public_rate_limit_per_minute: int = Field(default=30, ge=1)
    # How long each API process reuses an admin's /admin/users/counts; 0 turns it off.
    admin_counts_cache_s: float = Field(default=2.0, ge=0, le=60)
    # How long each API process reuses what an admin's roles administer (catalog lookups).
    admin_scope_cache_s: float = Field(default=10.0, ge=0, le=300)
    # How long each API process reuses a group's admin addresses (read from Auth0 to
    # notify them of requests); a stale copy also serves while Auth0 is down.
    group_admins_cache_s: float = Field(default=60.0, ge=0, le=3600)
    # How long each API process trusts Auth0's answer to "which roles does this user hold
    # now?" (asked before admin writes, for the caller and the target). A removed admin
    # role stops working within a minute: fresh for this long, then served stale while
    # Auth0 is down until 60 s have passed in all, then 503.
    live_roles_cache_s: float = Field(default=30.0, ge=0, le=60)

    # Email: the queue is delivered by the scheduler's `email.deliver` job.
    no_reply_email_sender: str = "no-reply@aai.localhost"
    support_email: str = "support@biocommons.org.au"
    # console: log each message (dev); file: write .eml files to EMAIL_FILE_DIR (dev, tests).
    email_backend: Literal["console", "file", "smtp", "ses"] = "console"
    email_file_dir: str = "var/mail"
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # starttls: upgrade a plain connection (port 587); tls: TLS from the start (465).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    smtp_ca_file: str | None = None  # a private CA to trust for the server's certificate
    ses_region: str | None = None
    ses_endpoint_url: str | None = None  # a local SESv2-compatible endpoint, for tests
    ses_configuration_set: str | None = None
    # The verified SES identity to send as, when it is another account's (cross-account
    # sending authorisation); the old backend's setting, passed to SESv2 as
    # FromEmailAddressIdentityArn.
    ses_resource_arn: str | None = None
    email_interval_s: int = Field(default=5, ge=1)
    email_batch_size: int = Field(default=100, ge=1, le=1000)
    # Messages in flight at once (SMTP: one connection each).
    email_concurrency: int = Field(default=8, ge=1, le=64)
    # A message being sent is leased for this long; if its sender dies, it is retried after.
    email_lease_s: int = Field(default=120, ge=1)
    email_max_attempts: int = Field(default=8, ge=1, le=100)
    email_max_age_s: int = Field(default=2 * 24 * 3600, ge=60)
    email_retry_base_s: float = Field(default=30.0, gt=0)
    email_retry_max_s: float = Field(default=3600.0, gt=0)

    # Database: DB_HOST (with its siblings) wins over DB_URL; nothing set means SQLite.
    db_url: str | None = None
    db_host: str | None = None
    db_port: int = 5432
    db_name: str = "aai"
    db_user: str = "postgres"
    db_password: SecretStr | None = None
    # TLS to Postgres, as libpq names it: verify-full checks the certificate against
    # DB_SSLROOTCERT (the RDS CA bundle in production) and the host name.
    db_sslmode: (
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None
    ) = None
    db_sslrootcert: str | None = None
    # Per process. Sized to what one API worker keeps busy at once (16 clients over 2
    # workers held 6-8 each in scripts/bench/admin_lists), with no overflow: an overflow
    # connection is closed when returned, so under load each worker opened and closed
    # several Postgres connections a second. A request beyond the pool waits for a
    # connection (up to DB_CONNECT_TIMEOUT_S) rather than opening one.
    db_pool_size: int = Field(default=10, ge=1, le=100)
    db_max_overflow: int = Field(default=0, ge=0, le=100)
    # Per process: the hot reads' statements (admin lists, page counts, profile, a user's
    # details) sent at once; the rest wait in arrival order without holding a connection
    # (db/reads.py). They are CPU work in Postgres, so about the database's cores over the
    # API's workers: 2 per worker took the lists' p99 from 88-181 to 26-56 ms with a
    # 2-core database (README, "The hot reads").
    db_hot_read_concurrency: int = Field(default=2, ge=1, le=100)
    db_connect_timeout_s: float = Field(default=10.0, gt=0)
    db_statement_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("environment", mode="before")
    @classmethod
    def _environment_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            key = value.strip().lower()
            if key not in _ENVIRONMENT_ALIASES:
                allowed = ", ".join(sorted(_ENVIRONMENT_ALIASES))
                raise ValueError(f"ENVIRONMENT must be one of {allowed}; got {value!r}")
            return _ENVIRONMENT_ALIASES[key]
        return value

    @field_validator(
        "admin_roles",
        "cors_allowed_origins",
        "registration_default_platforms",
        "forwarded_allow_ips",
        "sbp_allowed_email_domains",
        "auth0_algorithms",
        mode="before",
    )
    @classmethod
    def _list_from_env(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("auth0_algorithms")
    @classmethod
    def _rs256_only(cls, value: list[str]) -> list[str]:
        if [algorithm.upper() for algorithm in value] != ["RS256"]:
            raise ValueError(f"only RS256 is accepted for Auth0 access tokens, not {value}")
        return ["RS256"]

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return value

    @field_validator(
        "auth0_custom_domain", "auth0_issuer", "auth0_plan", "db_url", "db_host", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "Settings":
        if self.environment != "production":
            return self
        problems: list[str] = []
        if self.database_url.get_backend_name() == "sqlite":
            problems.append("DB_URL/DB_HOST: production needs PostgreSQL, not SQLite")
        secrets = {
            "JWT_SECRET_KEY": (self.jwt_secret_key, DEV_JWT_SECRET),
            "AUTH0_MANAGEMENT_SECRET": (self.auth0_management_secret, DEV_MANAGEMENT_SECRET),
            "AUTH0_PASSWORD_CLIENT_SECRET": (
                self.auth0_password_client_secret,
                DEV_PASSWORD_CLIENT_SECRET,
            ),
            "AUTH0_ACTION_TOKEN_SECRET": (self.auth0_action_token_secret, DEV_ACTION_SECRET),
        }
        for name, (secret, placeholder) in secrets.items():
            value = secret.get_secret_value()
            if not value or value == placeholder:
                problems.append(f"{name}: must be set to a real secret in production")
        if len(self.jwt_secret_key.get_secret_value()) < 32:
            problems.append("JWT_SECRET_KEY: must be at least 32 characters in production")
        for name, stream_secret in (
            ("EVENTS_STREAM_SECRET", self.events_stream_secret),
            ("LOG_STREAM_SECRET", self.log_stream_secret),
        ):
            # Unset (or empty, as Secrets Manager leaves a key nobody filled) turns the inbox off.
            if stream_secret and 0 < len(stream_secret.get_secret_value()) < 32:
                problems.append(f"{name}: must be at least 32 characters in production")
        if len(self.auth0_action_token_secret.get_secret_value().encode()) < 32:
            # HS256 with a short secret can be brute-forced from one token.
            problems.append("AUTH0_ACTION_TOKEN_SECRET: must be at least 32 bytes in production")
        for origin in self.cors_origins:
            if origin == "*":
                problems.append(
                    "CORS_ALLOWED_ORIGINS: production refuses '*' (credentials are sent)"
                )
            elif origin.startswith("http://"):
                problems.append(
                    f"CORS_ALLOWED_ORIGINS: production refuses plain http:// ({origin})"
                )
            elif urlsplit(origin).hostname in ("localhost", "127.0.0.1", "::1"):
                problems.append(
                    f"CORS_ALLOWED_ORIGINS: production refuses a local origin ({origin})"
                )
        if urlsplit(self.recaptcha_verify_url).hostname not in RECAPTCHA_HOSTS or not (
            self.recaptcha_verify_url.startswith("https://")
        ):
            problems.append(
                "RECAPTCHA_VERIFY_URL: production only asks Google "
                f"(https://{' or '.join(sorted(RECAPTCHA_HOSTS))}); got {self.recaptcha_verify_url}"
            )
        if self.enable_admin_dashboard and not (
            self.admin_client_id
            and self.admin_client_secret
            and self.admin_client_secret.get_secret_value()
        ):
            problems.append(
                "ADMIN_CLIENT_ID/ADMIN_CLIENT_SECRET: the dashboard needs its own Auth0 "
                "application in production, not the Management API client"
            )
        if "*" in self.forwarded_allow_ips:
            problems.append(
                "FORWARDED_ALLOW_IPS: production refuses '*'; name the load balancer's networks"
            )
        if self.recaptcha_secret is None or not self.recaptcha_secret.get_secret_value():
            problems.append("RECAPTCHA_SECRET: must be set in production")
        if self.auth0_management_id in ("", DEV_MANAGEMENT_ID):
            problems.append("AUTH0_MANAGEMENT_ID: must be set in production")
        if self.auth0_password_client_id in ("", DEV_PASSWORD_CLIENT_ID, self.auth0_management_id):
            problems.append(
                "AUTH0_PASSWORD_CLIENT_ID: the current-password check needs its own Auth0 "
                "application with the Password grant, not the Management API client"
            )
        if self.auth0_audience in ("", DEV_AUDIENCE):
            problems.append("AUTH0_AUDIENCE: must be set in production")
        if self.email_backend in ("console", "file"):
            problems.append(
                f"EMAIL_BACKEND: {self.email_backend!r} delivers nothing; use smtp or ses in production"
            )
        if self.email_backend == "smtp" and not self.smtp_host:
            problems.append("SMTP_HOST: must be set when EMAIL_BACKEND=smtp")
        if self.email_backend == "smtp" and self.smtp_security == "none" and self.smtp_username:
            problems.append(
                "SMTP_SECURITY: production refuses sending SMTP credentials unencrypted"
            )
        if self.email_backend == "ses" and not self.ses_region:
            problems.append("SES_REGION: must be set when EMAIL_BACKEND=ses")
        for name in ("auth0_domain", "auth0_custom_domain", "auth0_issuer"):
            value = getattr(self, name)
            if value and normalise_origin(value).startswith("http://"):
                problems.append(f"{name.upper()}: production refuses plain http:// ({value})")
        problems.extend(self.auth0_domain_problems())
        if problems:
            raise ValueError("unsafe production configuration: " + "; ".join(problems))
        return self

    def auth0_domain_problems(self) -> list[str]:
        """The Management API answers only on the canonical domain: a custom domain as
        AUTH0_DOMAIN makes Auth0 refuse the management token ("Service not enabled within
        domain"), so every Management API call fails while the API looks healthy."""
        host = urlsplit(self.auth0_base_url).hostname or ""
        custom = (
            urlsplit(normalise_origin(self.auth0_custom_domain)).hostname
            if self.auth0_custom_domain
            else None
        )
        if custom and host == custom:
            return [
                "AUTH0_DOMAIN: equals AUTH0_CUSTOM_DOMAIN; AUTH0_DOMAIN must be the canonical "
                "tenant domain ({tenant}.{region}.auth0.com), the custom one is for logins"
            ]
        if not host.endswith(CANONICAL_AUTH0_SUFFIXES):
            return [
                f"AUTH0_DOMAIN: {host} is not a canonical Auth0 domain "
                f"(*{' or *'.join(CANONICAL_AUTH0_SUFFIXES)}); the Management API answers only "
                "there. Put a custom login domain in AUTH0_CUSTOM_DOMAIN"
            ]
        return []

    @property
    def auth0_base_url(self) -> str:
        return normalise_origin(self.auth0_domain)

    @property
    def auth0_issuers(self) -> list[str]:
        """Every issuer a token may carry: the tenant domain, the custom domain, AUTH0_ISSUER."""
        issuers = [f"{self.auth0_base_url}/"]
        for extra in (self.auth0_custom_domain, self.auth0_issuer):
            if extra:
                issuer = f"{normalise_origin(extra)}/"
                if issuer not in issuers:
                    issuers.append(issuer)
        return issuers

    def derived_key(self, purpose: str) -> str:
        """A key for one purpose only (session cookie, CSRF token, email-code hashes),
        derived from JWT_SECRET_KEY: one leaked or misused key is not the others."""
        root = self.jwt_secret_key.get_secret_value().encode()
        return hmac.new(root, f"aai-backend/{purpose}".encode(), hashlib.sha256).hexdigest()

    @property
    def cors_origins(self) -> list[str]:
        if self.cors_allowed_origins is not None:
            return self.cors_allowed_origins
        if self.environment == "dev":
            return [DEV_PORTAL_ORIGIN]
        return [self.portal_url]

    @property
    def portal_url(self) -> str:
        return (self.aai_portal_url or _PORTAL_URLS[self.environment]).rstrip("/")

    @property
    def database_url(self) -> URL:
        if self.db_host:
            host, _, port = self.db_host.partition(":")
            password = self.db_password.get_secret_value() if self.db_password else None
            url = URL.create(
                "postgresql+asyncpg",
                username=self.db_user,
                password=password,
                host=host,
                port=int(port) if port else self.db_port,
                database=self.db_name,
            )
        else:
            url = to_async_url(self.db_url or DEFAULT_SQLITE_URL)
        if url.get_backend_name() != "postgresql":
            return url
        # db.engine.tls_options turns these into asyncpg's `ssl` argument.
        tls = {"sslmode": self.db_sslmode, "sslrootcert": self.db_sslrootcert}
        return url.update_query_dict({k: v for k, v in tls.items() if v})

    @property
    def effective_log_format(self) -> str:
        return self.log_format or ("json" if self.is_production else "text")

    @property
    def api_docs(self) -> bool:
        if self.enable_api_docs is not None:
            return self.enable_api_docs
        return not self.is_production

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def sbp_registration_enabled(self) -> bool:
        if self.enable_sbp_registration is None:
            return not self.is_production
        return self.enable_sbp_registration

    @property
    def auth0_login_url(self) -> str:
        """Where users are sent back to Auth0 (the custom domain when there is one)."""
        return (
            normalise_origin(self.auth0_custom_domain)
            if self.auth0_custom_domain
            else self.auth0_base_url
        )


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one readable ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]).upper() or "configuration"
            lines.append(f"  - {where}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
