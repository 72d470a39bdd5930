"""The one async Management API client, shared by the API and the scheduler: one method per
Management API operation the service uses, each made through `Auth0Transport.call`."""

import asyncio
import json
import logging
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from auth0.management.types.create_export_users_fields import CreateExportUsersFields

from services.auth0.credentials import oauth_error
from services.auth0.transport import Auth0Transport
from services.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    ServiceUnavailable,
    TooManyRequests,
    UpstreamError,
)
from services.kit.outbound import tls_context

logger = logging.getLogger("aai.auth0")

# Auth0 never pages past the first 1000 results of a search, and reports a `total` of at
# most 1000: a total that reaches it says "this many or more", never "complete".
USERS_LIST_CAP = 1000


def _taken_field(message: str) -> str | None:
    """The field of Auth0's "The specified new <field> already exists" (a PATCH duplicate)."""
    lowered = message.lower()
    if "already exists" not in lowered:
        return None
    for field_name in ("email", "username"):
        if f"new {field_name}" in lowered:
            return field_name
    return None


@dataclass
class RolePages:
    """What paging a role's members showed: `suspect` when the list may be cut short."""

    suspect: bool = False


class PasswordCheckRefused(ServiceUnavailable):
    """Auth0 refused the password client itself (no Password grant, no default directory, a
    wrong secret): configuration, not the user's password. `reason`: Auth0's words."""

    def __init__(self, detail: str, *, reason: str, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.reason = reason


class ExportUnavailable(UpstreamError):
    """The tenant refuses user export jobs (Auth0's Free plan)."""


class Auth0Gateway(Auth0Transport):
    # ---- users ------------------------------------------------------------------------

    async def get_user(self, user_id: str, *, anonymous: bool = False) -> dict[str, Any]:
        user = await self.call("users.get", lambda c: c.users.get(user_id), anonymous=anonymous)
        return user.model_dump(mode="json", exclude_none=True)

    async def users_by_email(self, email: str, *, anonymous: bool = False) -> list[dict[str, Any]]:
        users = await self.call(
            "users.by_email",
            lambda c: c.users.list_users_by_email(email=email.lower()),
            anonymous=anonymous,
        )
        return [u.model_dump(mode="json", exclude_none=True) for u in users]

    async def _conflict_field(self, email: str | None) -> str:
        if email and await self.users_by_email(email):
            return "email"
        return "username" if email else "email"

    async def create_user(self, **fields: Any) -> dict[str, Any]:
        """POST /users, never retried blindly: a duplicate is a 409 naming the field."""
        try:
            user = await self.call(
                "users.create", lambda c: c.users.create(**fields), idempotent=False
            )
        except Conflict as exc:
            field_name = await self._conflict_field(fields.get("email"))
            raise Conflict(
                f"a user with this {field_name} already exists", field=field_name
            ) from exc
        return user.model_dump(mode="json", exclude_none=True)

    async def update_user(self, user_id: str, **fields: Any) -> dict[str, Any]:
        """PATCH /users/{id}. Auth0 answers an email or username another user of the
        connection holds with 400 "The specified new email already exists" (…username…),
        not the 409 of a create: both leave here as a 409 naming the field."""
        try:
            user = await self.call("users.update", lambda c: c.users.update(user_id, **fields))
        except BadRequest as exc:
            field_name = _taken_field(exc.detail)
            if field_name is None:
                raise
            raise Conflict(f"another user already has this {field_name}", field=field_name) from exc
        except Conflict as exc:
            if "email" in fields and "username" not in fields:
                field_name = "email"
            elif "username" in fields and "email" not in fields:
                field_name = "username"
            else:
                field_name = await self._conflict_field(fields.get("email"))
            raise Conflict(f"another user already has this {field_name}", field=field_name) from exc
        return user.model_dump(mode="json", exclude_none=True)

    async def delete_user(self, user_id: str) -> None:
        await self.call("users.delete", lambda c: c.users.delete(user_id))

    async def revoke_refresh_tokens(self, user_id: str) -> None:
        await self.call(
            "users.refresh_tokens.delete", lambda c: c.users.refresh_token.delete(user_id)
        )

    async def list_users_page(
        self, *, page: int, per_page: int = 100, q: str | None = None, sort: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        pager = await self.call(
            "users.list",
            lambda c: c.users.list(
                page=page, per_page=per_page, include_totals=True, q=q, sort=sort
            ),
        )
        total = int(getattr(pager.response, "total", 0) or 0)
        return [u.model_dump(mode="json", exclude_none=True) for u in pager.items or []], total

    async def iter_users(
        self, *, q: str | None = None, per_page: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Every user matching `q` through paged listing; refuses more than Auth0 will page."""
        page = 0
        seen = 0
        while True:
            users, total = await self.list_users_page(page=page, per_page=per_page, q=q)
            if total >= USERS_LIST_CAP:
                # Auth0 reports at most 1000: that many means "1000 or more".
                raise UpstreamError(
                    f"{USERS_LIST_CAP} or more users match; Auth0 pages through "
                    f"{USERS_LIST_CAP} at most, use an export job"
                )
            for user in users:
                yield user
            seen += len(users)
            page += 1
            if not users or seen >= total:
                return

    async def verify_password(
        self,
        username: str,
        password: str,
        *,
        realm: str,
        client: tuple[str, str],
        end_user_ip: str | None = None,
    ) -> bool:
        """Is this the user's password? The password-realm grant of the Authentication API,
        made with `client` (id, secret): an application with the Password grant, never the
        management client. `end_user_ip` goes to Auth0 as `auth0-forwarded-for`, so its
        brute-force protection counts the user's address rather than this server's (with
        "Trust Token Endpoint IP Header" on that application).

        True for a right password (also when Auth0 then asks for MFA: the password was
        accepted); False for a wrong one. Anything else is not an answer about the password:
        Auth0's brute-force block is a 429, a blocked user a 403, and a grant or client
        Auth0 refuses is a configuration fault, logged for ops and a 503 to the user."""
        client_id, client_secret = client
        form = {
            "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
            "username": username,
            "password": password,
            "realm": realm,
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": "openid",
        }
        headers = {"auth0-forwarded-for": end_user_ip} if end_user_ip else None
        try:
            response = await self._http.post(
                f"{self.base_url}/oauth/token", data=form, headers=headers
            )
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"Auth0 is unreachable ({type(exc).__name__})") from exc
        if response.status_code == 200:
            return True
        error, description = oauth_error(response)
        if error == "invalid_grant":
            return False
        if error == "mfa_required":
            return True
        if error == "too_many_attempts":
            raise TooManyRequests(
                "Auth0 has blocked sign-ins to this account after too many failed attempts; "
                "the email it sent explains how to unblock it",
                headers={"Retry-After": "900"},
            )
        if response.status_code == 401 and "blocked" in description:
            raise Forbidden("this account is blocked")
        if response.status_code == 429 or response.status_code >= 500:
            raise ServiceUnavailable(f"Auth0 could not check the password ({response.status_code})")
        logger.error(
            "auth0 refused the current-password check (%s %s): %s; the password client "
            "(AUTH0_PASSWORD_CLIENT_ID) needs the Password grant and the tenant a default "
            "directory (README, Tenant setup)",
            response.status_code,
            error,
            description,
        )
        raise PasswordCheckRefused(
            "the current password cannot be checked right now; try again later",
            retry_after_s=60,
            reason=f"{error or response.status_code} ({description})",
        )

    async def request_password_reset(self, email: str, *, client_id: str, connection: str) -> None:
        """Auth0 emails the user a password-reset link (Authentication API)."""
        body = {"client_id": client_id, "email": email, "connection": connection}
        try:
            response = await self._http.post(
                f"{self.base_url}/dbconnections/change_password", json=body
            )
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"Auth0 is unreachable ({type(exc).__name__})") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise ServiceUnavailable(
                f"Auth0 could not send the reset email ({response.status_code})"
            )
        if response.status_code != 200:
            raise BadRequest(f"Auth0 refused the reset request ({response.status_code})")

    # ---- roles ------------------------------------------------------------------------

    async def list_roles(self) -> list[dict[str, Any]]:
        roles: list[dict[str, Any]] = []
        page = 0
        while True:
            pager = await self.call(
                "roles.list",
                # `call` runs the request before the loop moves on, so binding late is safe.
                lambda c: c.roles.list(page=page, per_page=100, include_totals=True),  # noqa: B023
            )
            items = [r.model_dump(mode="json", exclude_none=True) for r in pager.items or []]
            roles.extend(items)
            total = int(getattr(pager.response, "total", 0) or 0)
            page += 1
            if not items or len(roles) >= total:
                return roles

    async def create_role(self, name: str, description: str | None = None) -> dict[str, Any]:
        role = await self.call(
            "roles.create",
            lambda c: c.roles.create(name=name, description=description or name),
            idempotent=False,
        )
        return role.model_dump(mode="json", exclude_none=True)

    async def update_role(self, role_id: str, *, description: str) -> dict[str, Any]:
        role = await self.call(
            "roles.update", lambda c: c.roles.update(role_id, description=description)
        )
        return role.model_dump(mode="json", exclude_none=True)

    async def find_role(self, name: str) -> dict[str, Any] | None:
        """The role with exactly this name (Auth0's name filter matches substrings)."""
        pager = await self.call(
            "roles.list", lambda c: c.roles.list(name_filter=name, per_page=100)
        )
        for role in pager.items or []:
            if role.name == name:
                return role.model_dump(mode="json", exclude_none=True)
        return None

    async def delete_role(self, role_id: str) -> None:
        await self.call("roles.delete", lambda c: c.roles.delete(role_id))

    async def iter_role_members(
        self, role_id: str, *, take: int = 100, pages: "RolePages | None" = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Checkpoint paging: no 1000-member cap. `pages` learns whether the list may be
        cut short: a last page as full as asked for, yet naming no next page."""
        cursor: str | None = None
        while True:
            pager = await self.call(
                "roles.users.list",
                lambda c: c.roles.users.list(role_id, from_=cursor, take=take),  # noqa: B023 (as above)
            )
            items = pager.items or []
            for user in items:
                # Attribute reads, not model_dump: this loop runs for every member of every role.
                yield {"user_id": user.user_id, "email": user.email}
            cursor = getattr(pager.response, "next", None)
            if not cursor or not items:
                if pages is not None:
                    pages.suspect = not cursor and len(items) >= take
                return

    async def user_roles(self, user_id: str) -> list[dict[str, Any]]:
        pager = await self.call(
            "users.roles.list",
            lambda c: c.users.roles.list(user_id, per_page=100, include_totals=True),
        )
        return [r.model_dump(mode="json", exclude_none=True) for r in pager.items or []]

    async def assign_roles(self, user_id: str, role_ids: list[str]) -> None:
        # Assigning a held role is a no-op in Auth0, so this is safe to retry.
        await self.call(
            "users.roles.assign", lambda c: c.users.roles.assign(user_id, roles=role_ids)
        )

    async def remove_roles(self, user_id: str, role_ids: list[str]) -> None:
        await self.call(
            "users.roles.delete", lambda c: c.users.roles.delete(user_id, roles=role_ids)
        )

    # ---- jobs and tickets -------------------------------------------------------------

    async def send_verification_email(self, user_id: str) -> None:
        await self.call(
            "jobs.verification_email",
            lambda c: c.jobs.verification_email.create(user_id=user_id),
            idempotent=False,
        )

    async def password_change_ticket(self, user_id: str, *, result_url: str | None = None) -> str:
        kwargs: dict[str, Any] = {"user_id": user_id}
        if result_url:
            kwargs["result_url"] = result_url
        ticket = await self.call(
            "tickets.password_change",
            lambda c: c.tickets.change_password(**kwargs),
            idempotent=False,
        )
        return str(ticket.ticket)

    async def export_users(
        self,
        fields: list[str],
        *,
        connection_id: str | None = None,
        poll_interval_s: float = 0.25,
        timeout_s: float = 3600.0,
    ) -> AsyncIterator[dict[str, Any]]:
        """Run a user export job and stream its NDJSON lines."""
        export_fields = [CreateExportUsersFields(name=name) for name in fields]
        options: dict[str, Any] = {"format": "json", "fields": export_fields}
        if connection_id:
            options["connection_id"] = connection_id
        try:
            job = await self.call(
                "jobs.users_exports.create",
                lambda c: c.jobs.users_exports.create(**options),
                idempotent=False,
            )
        except UpstreamError as exc:
            if "(403)" in exc.detail:
                raise ExportUnavailable(exc.detail) from exc
            raise
        deadline = time.monotonic() + timeout_s
        while job.status not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise UpstreamError(
                    f"Auth0 export job {job.id} did not finish within {timeout_s:.0f}s"
                )
            await asyncio.sleep(poll_interval_s)
            # Small exports finish in a second; large ones take minutes: back off.
            poll_interval_s = min(poll_interval_s * 1.5, 10.0)
            job_id = job.id
            job = await self.call("jobs.get", lambda c: c.jobs.get(job_id))  # noqa: B023 (as above)
        if job.status == "failed" or not job.location:
            raise UpstreamError(
                f"Auth0 export job {job.id} failed: {getattr(job, 'status_details', None) or 'no details'}"
            )
        # The link is valid for 60 s; a later GET /jobs/{id} gives a fresh one.
        for attempt in range(3):
            try:
                async for line in self._download_ndjson(job.location):
                    yield line
                return
            except ExpiredLink:
                if attempt == 2:
                    raise UpstreamError(
                        f"Auth0 export job {job.id}: its download link kept expiring"
                    ) from None
                job_id = job.id
                job = await self.call("jobs.get", lambda c: c.jobs.get(job_id))  # noqa: B023 (as above)
                if not job.location:
                    raise UpstreamError(f"Auth0 export job {job.id} has no download link") from None

    async def _download_ndjson(self, location: str) -> AsyncIterator[dict[str, Any]]:
        """The export file's NDJSON lines. A pre-signed URL: no Authorization header. The
        file is gzip, possibly of several members (each member a part of the file), and is
        read as one stream whatever the headers say; a link refused before any byte came
        (400/403: expired) is `ExpiredLink`."""
        unzip = _Gunzip()
        buffer = b""
        try:
            async with (
                httpx.AsyncClient(timeout=60.0, verify=tls_context()) as plain,
                plain.stream("GET", location) as response,
            ):
                if response.status_code in (400, 403):
                    raise ExpiredLink(f"Auth0 export download answered {response.status_code}")
                if response.status_code != 200:
                    raise UpstreamError(f"Auth0 export download answered {response.status_code}")
                async for chunk in response.aiter_raw():
                    buffer += unzip.feed(chunk)
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"Auth0 export download failed ({type(exc).__name__})"
            ) from exc
        for line in (buffer + unzip.flush()).split(b"\n"):
            if line.strip():
                yield json.loads(line)


class ExpiredLink(Exception):
    """An export's download link refused before any data: ask the job for a fresh one."""


class _Gunzip:
    """Gzip of one or several members (RFC 1952 allows a file of concatenated members),
    or plain bytes when the first two are not gzip's magic."""

    def __init__(self) -> None:
        self._plain: bool | None = None
        self._member: Any = None

    def feed(self, data: bytes) -> bytes:
        if self._plain is None:
            self._plain = data[:2] != b"\x1f\x8b"
        if self._plain:
            return data
        out = b""
        while data:
            if self._member is None:
                self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += self._member.decompress(data)
            if not self._member.eof:
                break
            # The member ended: what follows is the next member.
            data = self._member.unused_data
            self._member = None
        return out

    def flush(self) -> bytes:
        if self._member is None or self._plain:
            return b""
        return bytes(self._member.flush())
