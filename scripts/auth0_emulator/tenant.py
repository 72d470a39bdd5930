"""In-memory state of an emulated Auth0 tenant: users, roles, assignments, keys, jobs.

Sized for 100k users: lookups are dict-based, role members are kept sorted so
checkpoint paging is a bisect, and the user list keeps insertion order.
"""

import bisect
import copy
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scripts.auth0_emulator.scopes import ALL_SCOPES

DEFAULT_CONNECTION = "Username-Password-Authentication"
# The client a change is logged as made by: the Management API's caller while it serves a
# request (set by the management routes), else a change made in the Auth0 Dashboard.
DASHBOARD_CLIENT = "emulator-dashboard"
ACTOR: ContextVar[str] = ContextVar("emulator_actor", default=DASHBOARD_CLIENT)


def default_picture(email: str | None) -> str:
    """The picture Auth0 gives a user who has none: their Gravatar, falling back to an
    initials image on cdn.auth0.com (the user profile's `picture`, "if the user has no
    Gravatar, a default image with their initials")."""
    address = (email or "").strip().lower()
    digest = hashlib.md5(address.encode(), usedforsecurity=False).hexdigest()
    initials = (address[:2] or "un").lower()
    fallback = quote(f"https://cdn.auth0.com/avatars/{initials}.png", safe="")
    return f"https://s.gravatar.com/avatar/{digest}?s=480&r=pg&d={fallback}"


def host_of(url: str) -> str:
    """`http://localhost:9010/` -> `localhost:9010` (what arrives in the Host header)."""
    return url.split("://", 1)[-1].split("/", 1)[0].lower()


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TenantError(Exception):
    """An Auth0-shaped API error: rendered as {statusCode, error, message, errorCode}."""

    def __init__(self, status: int, message: str, error_code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(kid=secrets.token_hex(8), private_key=rsa.generate_private_key(65537, 2048))

    def public_jwk(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


PASSWORD_GRANTS = frozenset({"password", "http://auth0.com/oauth/grant-type/password-realm"})


@dataclass
class AppClient:
    """An application of the tenant: its secret and the grant types enabled on it
    (Dashboard > Applications > Advanced Settings > Grant Types). A grant the client does
    not have is refused 403 `unauthorized_client` "Grant type '…' not allowed for the
    client." (auth0/auth0-java#165, auth0/auth0.net#501). `trust_ip_header`: "Trust Token
    Endpoint IP Header", under which `auth0-forwarded-for` names the end user's address for
    brute-force protection (Auth0 docs, "Avoid Common Issues with Resource Owner Password
    Flow and Attack Protection")."""

    secret: str
    grant_types: frozenset[str]
    trust_ip_header: bool = False


EXPORT_LINK_TTL_S = 60.0

# Auth0's brute-force protection: after this many failed logins for one user from one
# address, that address is blocked for the user (429 `too_many_attempts`).
BRUTE_FORCE_THRESHOLD = 10


@dataclass
class ExportJob:
    id: str
    created: float
    connection_id: str | None
    format: str
    fields: list[dict[str, Any]] | None
    limit: int | None
    fail: bool
    created_at: str = field(default_factory=iso_now)


@dataclass
class Tenant:
    """One tenant, served on its canonical domain (`issuer`) and, when `custom_issuer` is
    set, on a custom domain too.

    How the two domains differ follows Auth0's "Get Access Tokens" page, section "Custom
    domains and the Auth0 Management API"
    (https://auth0.com/docs/secure/tokens/access-tokens/get-access-tokens): a token's `iss`
    is the domain the token was requested on; the Management API's identifier (audience)
    is only ever `https://{tenant}.auth0.com/api/v2/`, and a Management API token must be
    used on the domain that issued it. Asking for `https://{custom domain}/api/v2/` is
    asking for an API the tenant does not have, which Auth0 answers 403 `access_denied`
    "Service not enabled within domain: <audience>" (the answer quoted in public projects'
    troubleshooting notes, e.g. the "Service not enabled within domain" hits in the code
    corpus). The portal logs users in through the custom domain, so user tokens default
    to its issuer.

    `strict=False` (the emulator's `--lenient`) restores the old kindness: any
    `<host>/api/v2/` audience, tokens used on either host, and no scope checks.
    """

    issuer: str  # the canonical domain, e.g. "http://127.0.0.1:9010/"
    audience: str  # the API identifier user tokens are issued for
    custom_issuer: str | None = None  # the custom domain, e.g. "http://localhost:9010/"
    strict: bool = True
    # The scopes the Management API client grant holds (None: every scope the emulator
    # knows). A token carries only these; an endpoint needs one of its own.
    granted_scopes: frozenset[str] | None = None
    # The database connection's password policy, as a minimum length ("fair": 8). Auth0
    # refuses a weaker one on create or update with 400 "PasswordStrengthError: Password is
    # too weak" and no detail (auth0/auth0-java#283, auth0/docs#5987).
    password_min_length: int = 8
    # The database connection's username rules: "Requires Username", and the length range
    # (auth0-lock's DEFAULT_CONNECTION_VALIDATION {min: 1, max: 15}; the connection's
    # validation.username may set up to 128).
    requires_username: bool = True
    username_length: tuple[int, int] = (1, 15)
    # Auth0's user search is eventually consistent: "when you create or update a user, it
    # can take a few seconds (or longer) before the change shows in search results" (user
    # search best practices; the Management API's GET /users reads the index, while
    # GET /users/{id} and /users-by-email read the user store). A change shows in GET /users
    # only `search_lag_s` after it was made, measured on `search_clock` (injectable).
    search_lag_s: float = 0.0
    search_clock: Callable[[], float] = time.monotonic
    _search_versions: dict[str, list[tuple[float, dict[str, Any]]]] = field(default_factory=dict)
    management_client_id: str = "dev-management-client"
    management_client_secret: str = "dev-management-secret"  # noqa: S105 - emulator default
    # The application the backend checks current passwords with (the password grant is
    # never enabled on the management client).
    password_client_id: str = "dev-password-client"  # noqa: S105 - an id, not a password
    password_client_secret: str = "dev-password-secret"  # noqa: S105 - emulator default
    clients: dict[str, AppClient] = field(default_factory=dict)
    # Users with multi-factor authentication: a right password answers 403 mfa_required.
    mfa_users: set[str] = field(default_factory=set)
    # (user id, address) -> consecutive failed logins, for brute-force protection.
    failed_logins: dict[tuple[str, str], int] = field(default_factory=dict)
    login_addresses: list[str] = field(default_factory=list)  # addresses logins came from
    export_link_key: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    linked: dict[str, str] = field(default_factory=dict)  # secondary user id -> primary
    roles_claim: str = "https://biocommons.org.au/roles"
    management_token_ttl_s: int = 86400
    access_token_ttl_s: int = 3600

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    user_order: list[str] = field(default_factory=list)
    passwords: dict[str, str] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    user_roles: dict[str, set[str]] = field(default_factory=dict)
    role_members: dict[str, list[str]] = field(default_factory=dict)  # sorted user ids
    jobs: dict[str, ExportJob] = field(default_factory=dict)
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate()])
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)  # emails Auth0 would send
    revoked_refresh_tokens: dict[str, int] = field(default_factory=dict)
    management_tokens_issued: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Called with ("event", CloudEvent) and ("log", log entry) for every change, as Auth0's
    # Event Streams and Log Streams would see it (scripts/auth0_emulator/streams.py).
    listeners: list[Callable[[str, dict[str, Any]], None]] = field(default_factory=list)
    tenant_name: str = "emulator"
    _log_sequence: int = 0
    # Auth0 keeps emails and usernames unique per connection, not per tenant.
    _email_index: dict[tuple[str, str], str] = field(default_factory=dict)
    _username_index: dict[tuple[str, str], str] = field(default_factory=dict)
    _by_email: dict[str, list[str]] = field(default_factory=dict)
    _role_names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clients.setdefault(
            self.management_client_id,
            AppClient(
                self.management_client_secret,
                frozenset({"client_credentials", "authorization_code"}),
            ),
        )
        self.clients.setdefault(
            self.password_client_id,
            AppClient(self.password_client_secret, PASSWORD_GRANTS, trust_ip_header=True),
        )

    # ---- keys and tokens -------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.issuer.rstrip("/")

    @property
    def management_audience(self) -> str:
        return f"{self.base_url}/api/v2/"

    @property
    def grant(self) -> frozenset[str]:
        """The scopes the management client's grant holds."""
        return ALL_SCOPES if self.granted_scopes is None else self.granted_scopes

    @property
    def user_issuer(self) -> str:
        """The issuer of tokens users get by logging in (the custom domain when there is one)."""
        return self.custom_issuer or self.issuer

    @property
    def issuers(self) -> list[str]:
        return [self.issuer, *([self.custom_issuer] if self.custom_issuer else [])]

    def issuer_for_host(self, host: str | None) -> str:
        """The issuer of the domain a request arrived on (the Host header)."""
        if self.custom_issuer and host and host.lower() == host_of(self.custom_issuer):
            return self.custom_issuer
        return self.issuer

    @property
    def signing_key(self) -> SigningKey:
        return self.keys[-1]

    def rotate_keys(self, *, keep_old: bool = True) -> SigningKey:
        key = SigningKey.generate()
        self.keys = [*self.keys, key] if keep_old else [key]
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    def sign(self, claims: dict[str, Any], *, key: SigningKey | None = None) -> str:
        key = key or self.signing_key
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})

    def decode(
        self, token: str, audience: str | list[str], issuer: str | list[str] | None = None
    ) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        key = next((k for k in self.keys if k.kid == header.get("kid")), None)
        if key is None:
            raise jwt.InvalidTokenError("unknown kid")
        return jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer or self.issuers,
        )

    def issue_management_token(
        self,
        client_id: str,
        *,
        ttl_s: int | None = None,
        issuer: str | None = None,
        scopes: list[str] | None = None,
    ) -> tuple[str, int]:
        ttl = ttl_s or self.management_token_ttl_s
        now = int(time.time())
        claims = {
            "iss": issuer or self.issuer,
            "sub": f"{client_id}@clients",
            "aud": self.management_audience,
            "iat": now,
            "exp": now + ttl,
            "gty": "client-credentials",
            "azp": client_id,
            "scope": " ".join(scopes if scopes is not None else sorted(self.grant)),
        }
        with self.lock:
            self.management_tokens_issued += 1
        return self.sign(claims), ttl

    def mint_access_token(
        self,
        user_id: str,
        *,
        roles: list[str] | None = None,
        audience: str | list[str] | None = None,
        expires_in: int | None = None,
        scope: str = "openid profile email",
        extra_claims: dict[str, Any] | None = None,
        include_roles_claim: bool = True,
        key: SigningKey | None = None,
        issuer: str | None = None,
    ) -> str:
        """An RS256 access token as Auth0 issues it after login (roles from the tenant by
        default; issued by the custom domain when there is one, as the portal logs in there)."""
        now = int(time.time())
        issuer = issuer or self.user_issuer
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": user_id,
            "aud": audience if audience is not None else [self.audience, f"{issuer}userinfo"],
            "iat": now,
            "exp": now + (expires_in if expires_in is not None else self.access_token_ttl_s),
            "scope": scope,
            "azp": self.management_client_id,
        }
        if include_roles_claim:
            claims[self.roles_claim] = roles if roles is not None else self.role_names_of(user_id)
        claims.update(extra_claims or {})
        return self.sign(claims, key=key)

    # ---- users -----------------------------------------------------------------

    def _check_unique(
        self, connection: str, email: str | None, username: str | None, exclude: str | None
    ) -> None:
        """Emails and usernames are unique per connection. Auth0 answers a duplicate
        differently by operation: creating a user is 409 "The user already exists." (Management
        API reference, POST /users: 409 "User already exists"), while changing a user's email or
        username to one another user holds is **400** `auth0_idp_error` "The specified new
        email already exists" / "…username…" (auth0/node-auth0#139: a 400 `auth0_idp_error`
        on an email change). `exclude` is the user being changed (None: a create)."""
        updating = exclude is not None
        if email and self._email_index.get((connection, email.lower()), exclude) != exclude:
            if updating and self.strict:
                raise TenantError(400, "The specified new email already exists", "auth0_idp_error")
            raise TenantError(409, "The user already exists.", "auth0_idp_error")
        if (
            username
            and self._username_index.get((connection, username.lower()), exclude) != exclude
        ):
            if updating and self.strict:
                raise TenantError(
                    400, "The specified new username already exists", "auth0_idp_error"
                )
            raise TenantError(409, "The username provided is in use already.", "auth0_idp_error")

    @staticmethod
    def connection_of(user: dict[str, Any]) -> str:
        return str(user["identities"][0]["connection"])

    def _index(self, user: dict[str, Any]) -> None:
        connection = self.connection_of(user)
        if user["email"]:
            self._email_index[(connection, user["email"])] = user["user_id"]
            self._by_email.setdefault(user["email"], []).append(user["user_id"])
        if user["username"]:
            self._username_index[(connection, user["username"].lower())] = user["user_id"]

    def _unindex(self, user: dict[str, Any]) -> None:
        connection = self.connection_of(user)
        if user["email"]:
            self._email_index.pop((connection, user["email"]), None)
            holders = self._by_email.get(user["email"], [])
            if user["user_id"] in holders:
                holders.remove(user["user_id"])
            if not holders:
                self._by_email.pop(user["email"], None)
        if user["username"]:
            self._username_index.pop((connection, user["username"].lower()), None)

    def _check_fields(self, connection: str, data: dict[str, Any]) -> None:
        """Field rules Auth0 applies to a user of a database connection, in the shape of its
        payload validation errors (400 `invalid_body`). Profile names: given_name and
        family_name at most 150 characters, name 300 (Management API, Create a User)."""
        if not self.strict:
            return
        for key, limit in (("given_name", 150), ("family_name", 150), ("name", 300)):
            value = data.get(key)
            if isinstance(value, str) and len(value) > limit:
                raise TenantError(
                    400,
                    f"Payload validation error: 'String is too long ({len(value)} chars), "
                    f"maximum {limit}' on property {key}.",
                    "invalid_body",
                )
        username = data.get("username")
        if connection != DEFAULT_CONNECTION or username is None:
            return
        if not self.requires_username:
            raise TenantError(
                400, "Cannot set username for connection without requires_username", "invalid_body"
            )
        low, high = self.username_length
        if not low <= len(str(username)) <= high:
            raise TenantError(
                400,
                f"Payload validation error: 'String is too long ({len(str(username))} chars), "
                f"maximum {high}' on property username."
                if len(str(username)) > high
                else f"Payload validation error: 'String is too short, minimum {low}' on property username.",
                "invalid_body",
            )

    # ---- what Event Streams and Log Streams see --------------------------------

    def _emit_user(self, kind: str, user: dict[str, Any]) -> None:
        """A CloudEvent as Event Streams deliver it ("Event Types": `{id, source, specversion,
        type, time, data: {object}}` with the full user object; `a0tenant`, `a0stream`)."""
        if not self.listeners:
            return
        event = {
            "id": f"evt_{secrets.token_hex(11)}",
            "source": f"urn:auth0:{self.tenant_name}:users",
            "specversion": "1.0",
            "type": kind,
            "time": iso_now(),
            "data": {"object": copy.deepcopy(user)},
            "a0tenant": self.tenant_name,
            "a0stream": "est_emulator",
        }
        for listener in list(self.listeners):
            listener("event", event)

    def _emit_log(self, kind: str, *, user_id: str | None = None, **details: Any) -> None:
        """A tenant log entry as a Log Stream delivers it (`{log_id, data: {date, type,
        client_id, user_id, details}}`); `sapi` entries carry the Management API request's
        method, path and body."""
        if not self.listeners:
            return
        with self.lock:
            self._log_sequence += 1
            sequence = self._log_sequence
        data: dict[str, Any] = {
            "date": iso_now(),
            "type": kind,
            "client_id": ACTOR.get(),
            "ip": "127.0.0.1",
            "details": details,
        }
        if user_id:
            data["user_id"] = user_id
        log_id = f"9002{time.time_ns():020d}{sequence:012d}"
        data["log_id"] = log_id
        for listener in list(self.listeners):
            listener("log", {"log_id": log_id, "data": data})

    def log_api_call(
        self, method: str, path: str, body: dict[str, Any] | None = None, **extra: Any
    ) -> None:
        self._emit_log(
            "sapi",
            request={"method": method.lower(), "path": path, "body": body or {}},
            response={"statusCode": 200},
            **extra,
        )

    def create_user(self, data: dict[str, Any]) -> dict[str, Any]:
        connection = data.get("connection")
        if not connection:
            raise TenantError(
                400,
                "Payload validation error: 'Missing required property: connection'.",
                "invalid_body",
            )
        email = data.get("email")
        if connection == DEFAULT_CONNECTION and not email:
            raise TenantError(
                400, "Payload validation error: 'Missing required property: email'.", "invalid_body"
            )
        password = data.get("password")
        if connection == DEFAULT_CONNECTION and "user_id" not in data:
            if not password:
                raise TenantError(
                    400,
                    "Payload validation error: 'Missing required property: password'.",
                    "invalid_body",
                )
            if len(password) < self.password_min_length:
                raise TenantError(
                    400, "PasswordStrengthError: Password is too weak", "invalid_body"
                )
        self._check_fields(connection, data)
        email = email.lower() if email else None
        username = data.get("username")
        with self.lock:
            self._check_unique(connection, email, username, None)
            provider = "auth0" if connection == DEFAULT_CONNECTION else connection
            local_id = data.get("user_id") or uuid.uuid4().hex[:24]
            user_id = local_id if "|" in str(local_id) else f"{provider}|{local_id}"
            if user_id in self.users:
                raise TenantError(409, "The user already exists.", "auth0_idp_error")
            now = iso_now()
            user = {
                "user_id": user_id,
                "email": email,
                "email_verified": bool(data.get("email_verified", False)),
                "username": username,
                "name": data.get("name") or email or username or user_id,
                "nickname": data.get("nickname") or (email.split("@")[0] if email else username),
                "given_name": data.get("given_name"),
                "family_name": data.get("family_name"),
                "picture": data.get("picture") or default_picture(email),
                "blocked": bool(data.get("blocked", False)),
                "created_at": data.get("created_at") or now,
                "updated_at": now,
                "last_login": data.get("last_login"),
                "logins_count": data.get("logins_count", 0),
                "identities": [
                    {
                        "connection": connection,
                        "provider": provider,
                        "user_id": user_id.split("|", 1)[1],
                        "isSocial": provider != "auth0",
                    }
                ],
                "app_metadata": dict(data.get("app_metadata") or {}),
                "user_metadata": dict(data.get("user_metadata") or {}),
            }
            self.users[user_id] = user
            self.user_order.append(user_id)
            self._index(user)
            self._record_for_search(user)
            if password:
                self.passwords[user_id] = password
        self._emit_user("user.created", user)
        # Every user is created through the Management API here (the backend's sign-up, the
        # Dashboard), which Auth0 logs as `sapi`; `ss` is a sign-up through the
        # Authentication API, which the emulator does not serve.
        self.log_api_call("POST", "/api/v2/users", user_id=user_id)
        return user

    def get_user(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None:
            raise TenantError(404, "The user does not exist.", "inexistent_user")
        return user

    def update_user(self, user_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            user = self.get_user(user_id)
            self._check_fields(self.connection_of(user), data)
            email = data.get("email")
            email = email.lower() if isinstance(email, str) else None
            username = data.get("username")
            self._check_unique(
                self.connection_of(user),
                email,
                username if isinstance(username, str) else None,
                user_id,
            )
            if "password" in data:
                if len(data["password"] or "") < self.password_min_length:
                    raise TenantError(
                        400, "PasswordStrengthError: Password is too weak", "invalid_body"
                    )
                self.passwords[user_id] = data["password"]
            email_changes = bool(email and email != user["email"])
            username_changes = "username" in data and username != user["username"]
            if email_changes or username_changes:
                self._unindex(user)
                if email_changes:
                    user["email"] = email
                    user["email_verified"] = bool(data.get("email_verified", False))
                if username_changes:
                    user["username"] = username
                self._index(user)
            for key in (
                "email_verified",
                "blocked",
                "name",
                "nickname",
                "given_name",
                "family_name",
                "picture",
            ):
                if key in data:
                    user[key] = data[key]
            for key in ("app_metadata", "user_metadata"):
                if key in data:
                    # Auth0 merges metadata one level deep; null removes a key.
                    merged = {**user[key], **(data[key] or {})}
                    user[key] = {k: v for k, v in merged.items() if v is not None}
            user["updated_at"] = iso_now()
            self._record_for_search(user)
        self._emit_user("user.updated", user)
        self.log_api_call("PATCH", f"/api/v2/users/{user_id}", user_id=user_id)
        return user

    def record_login(self, user: dict[str, Any]) -> None:
        """A login changes the user: `last_login`, `logins_count` and `updated_at` (the
        user profile's "updated_at: last time the profile was updated, including logins";
        Auth0 user profile structure), so incremental syncs see every user who logs in."""
        with self.lock:
            now = iso_now()
            user["last_login"] = now
            user["logins_count"] = int(user.get("logins_count") or 0) + 1
            user["updated_at"] = now
            self._record_for_search(user)

    # ---- the search index (eventually consistent) --------------------------------

    def _record_for_search(self, user: dict[str, Any]) -> None:
        if self.search_lag_s > 0:
            now = self.search_clock()
            versions = self._search_versions.setdefault(user["user_id"], [])
            versions.append((now, dict(user)))
            # The index shows the newest version older than the lag: older ones than that
            # are never shown again (keeping only the last few would drop a user changed
            # often within the lag from the search altogether).
            shown = [
                i for i, (moment, _) in enumerate(versions) if moment <= now - self.search_lag_s
            ]
            if shown:
                del versions[: shown[-1]]

    def searchable(self, user: dict[str, Any]) -> dict[str, Any] | None:
        """The user as the search index shows it now: the latest version older than the
        lag (None: not in the index yet). GET /users (the search) reads this; get by id and
        users-by-email read the user itself."""
        if self.search_lag_s <= 0:
            return user
        versions = self._search_versions.get(user["user_id"])
        if not versions:
            return user  # not changed since the lag was switched on
        horizon = self.search_clock() - self.search_lag_s
        visible = [snapshot for moment, snapshot in versions if moment <= horizon]
        return visible[-1] if visible else None

    def delete_user(self, user_id: str) -> None:
        with self.lock:
            user = self.users.pop(user_id, None)
            if user is None:
                return
            self.user_order.remove(user_id)
            self._unindex(user)
            for role_id in self.user_roles.pop(user_id, set()):
                self._remove_member(role_id, user_id)
            self.passwords.pop(user_id, None)
        self._emit_user("user.deleted", user)
        self.log_api_call("DELETE", f"/api/v2/users/{user_id}", user_id=user_id)

    def users_by_email(self, email: str) -> list[dict[str, Any]]:
        return [self.users[user_id] for user_id in self._by_email.get(email.lower(), [])]

    def link_accounts(self, primary_id: str, secondary_id: str) -> list[dict[str, Any]]:
        """Account linking (POST /users/{id}/identities; Auth0 docs, "User Account
        Linking"): the secondary user's identity joins the primary's `identities`, the
        secondary user is gone as a user of its own, and a login through its identity is
        the primary user (tokens carry the primary's `user_id`). Answers the identities."""
        with self.lock:
            primary = self.get_user(primary_id)
            secondary = self.get_user(secondary_id)
            identity = dict(secondary["identities"][0])
            identity["profileData"] = {
                k: secondary.get(k) for k in ("email", "email_verified", "name") if secondary.get(k)
            }
            # The secondary's roles and metadata are not carried over: it is deleted.
            self.delete_user(secondary_id)
            primary["identities"].append(identity)
            self.linked[secondary_id] = primary_id
            primary["updated_at"] = iso_now()
            self._record_for_search(primary)
            identities = list(primary["identities"])
        self._emit_user("user.updated", primary)
        return identities

    def find_user(self, hint: str) -> dict[str, Any] | None:
        if hint in self.linked:
            return self.users.get(self.linked[hint])
        if hint in self.users:
            return self.users[hint]
        found = self.users_by_email(hint)
        if found:
            return found[0]
        user_id = self._username_index.get((DEFAULT_CONNECTION, hint.lower()))
        return self.users.get(user_id) if user_id else None

    # ---- roles -----------------------------------------------------------------

    def create_role(
        self, name: str, description: str | None = None, role_id: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            if name in self._role_names:
                raise TenantError(409, "Role name already exists", "conflict")
            role_id = (
                role_id or f"rol_{secrets.token_urlsafe(12).replace('-', 'x').replace('_', 'y')}"
            )
            role = {"id": role_id, "name": name, "description": description or name}
            self.roles[role_id] = role
            self._role_names[name] = role_id
            self.role_members[role_id] = []
        self.log_api_call("POST", "/api/v2/roles", {"name": name, "description": description})
        return role

    def get_role(self, role_id: str) -> dict[str, Any]:
        role = self.roles.get(role_id)
        if role is None:
            raise TenantError(404, "The role does not exist.", "inexistent_role")
        return role

    def role_by_name(self, name: str) -> dict[str, Any] | None:
        role_id = self._role_names.get(name)
        return self.roles.get(role_id) if role_id else None

    def role_id(self, name: str) -> str:
        """The id of the role named `name` (KeyError if there is none)."""
        return str(self.roles[self._role_names[name]]["id"])

    def update_role(self, role_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            role = self.get_role(role_id)
            name = data.get("name")
            if name and name != role["name"]:
                if name in self._role_names:
                    raise TenantError(409, "Role name already exists", "conflict")
                self._role_names.pop(role["name"])
                self._role_names[name] = role_id
                role["name"] = name
            if "description" in data:
                role["description"] = data["description"]
        self.log_api_call("PATCH", f"/api/v2/roles/{role_id}", dict(data))
        return role

    def delete_role(self, role_id: str) -> None:
        with self.lock:
            role = self.get_role(role_id)
            self._role_names.pop(role["name"], None)
            del self.roles[role_id]
            for user_id in self.role_members.pop(role_id, []):
                self.user_roles.get(user_id, set()).discard(role_id)
        self.log_api_call("DELETE", f"/api/v2/roles/{role_id}")

    def _remove_member(self, role_id: str, user_id: str) -> None:
        members = self.role_members.get(role_id)
        if members is None:
            return
        index = bisect.bisect_left(members, user_id)
        if index < len(members) and members[index] == user_id:
            members.pop(index)

    def assign_roles(self, user_id: str, role_ids: list[str], *, logged: bool = True) -> None:
        """`logged`: emit the Management API log entry (False when the caller logs its own,
        as POST /roles/{id}/users does)."""
        with self.lock:
            self.get_user(user_id)
            for role_id in role_ids:
                if role_id not in self.roles:
                    raise TenantError(404, f"Role {role_id} not found", "inexistent_role")
            held = self.user_roles.setdefault(user_id, set())
            for role_id in role_ids:
                if role_id not in held:
                    held.add(role_id)
                    bisect.insort(self.role_members[role_id], user_id)
        if logged:
            self.log_api_call("POST", f"/api/v2/users/{user_id}/roles", {"roles": list(role_ids)})

    def grant_roles(self, user_id: str, names: list[str]) -> None:
        """Assign roles by name, creating the ones the tenant lacks (a test convenience)."""
        ids = []
        for name in names:
            role = self.role_by_name(name) or self.create_role(name, name)
            ids.append(role["id"])
        if ids:
            self.assign_roles(user_id, ids)

    def remove_roles(self, user_id: str, role_ids: list[str]) -> None:
        with self.lock:
            self.get_user(user_id)
            held = self.user_roles.get(user_id, set())
            for role_id in role_ids:
                if role_id in held:
                    held.discard(role_id)
                    self._remove_member(role_id, user_id)
        self.log_api_call("DELETE", f"/api/v2/users/{user_id}/roles", {"roles": list(role_ids)})

    def roles_of(self, user_id: str) -> list[dict[str, Any]]:
        return sorted(
            (self.roles[r] for r in self.user_roles.get(user_id, ())), key=lambda r: r["name"]
        )

    def role_names_of(self, user_id: str) -> list[str]:
        return [role["name"] for role in self.roles_of(user_id)]

    def role_members_after(
        self, role_id: str, after: str | None, take: int
    ) -> tuple[list[str], str | None]:
        members = self.role_members.get(role_id)
        if members is None:
            raise TenantError(404, "The role does not exist.", "inexistent_role")
        start = bisect.bisect_right(members, after) if after else 0
        page = members[start : start + take]
        # Auth0: "If there are more results, a `next` value is included in the response.
        # When `next` is no longer included in the response, no pages are remaining"
        # (Management API, Get a role's users; auth0-python's roles.users.list docstring).
        # So the last page names no next one, even when it is full.
        has_more = start + take < len(members)
        return page, (page[-1] if page and has_more else None)

    # ---- export jobs -----------------------------------------------------------

    def sign_export_location(self, job_id: str, *, completed: float, stale: bool = False) -> str:
        """The query of a pre-signed download link: "The download link is valid for 60
        seconds … you have 24 hours to call it again" (Auth0 docs, Bulk User Exports): valid
        60 s from the job's completion, or from a later GET /jobs/{id}, which gives a fresh
        one. Times are monotonic seconds, as the job's."""
        moment = max(completed, time.monotonic()) + EXPORT_LINK_TTL_S
        if stale:
            moment = time.monotonic() - 1
        expires = f"{moment:.3f}"
        return urlencode({"expires": expires, "signature": self._link_signature(job_id, expires)})

    def _link_signature(self, job_id: str, expires: str) -> str:
        return hmac.new(
            self.export_link_key, f"{job_id}:{expires}".encode(), hashlib.sha256
        ).hexdigest()

    def export_link_valid(self, job_id: str, expires: str, signature: str) -> bool:
        if not hmac.compare_digest(self._link_signature(job_id, expires), signature):
            return False
        try:
            return float(expires) >= time.monotonic()
        except ValueError:
            return False

    def create_export(self, body: dict[str, Any], *, fail: bool) -> ExportJob:
        job = ExportJob(
            id=f"job_{secrets.token_hex(8)}",
            created=time.monotonic(),
            connection_id=body.get("connection_id"),
            format=body.get("format", "json"),
            fields=body.get("fields"),
            limit=body.get("limit"),
            fail=fail,
        )
        with self.lock:
            self.jobs[job.id] = job
        return job
