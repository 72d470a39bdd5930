"""The emulator's Management API v2 subset: users, roles and their members, export jobs,
tickets, all behind a management token for the tenant's audience."""

import secrets
import time
from typing import Any

import jwt
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from scripts.auth0_emulator.app import MAX_PAGED_RESULTS, EmulatorState, fast_json
from scripts.auth0_emulator.scopes import ENDPOINT_SCOPES, insufficient
from scripts.auth0_emulator.search import compile_query, lookup, project, user_matches
from scripts.auth0_emulator.tenant import (
    ACTOR,
    ExportJob,
    TenantError,
    iso_now,
)


def management_routes(state: EmulatorState) -> APIRouter:
    """The routes, to be mounted under /api/v2."""
    tenant = state.tenant

    # token -> (exp, signing kids, iss, scopes) of a token already verified
    verified_tokens: dict[str, tuple[float, tuple[str, ...], str, frozenset[str], str]] = {}

    async def management_token(request: Request) -> None:
        """A token for this tenant's Management API, used on the domain that issued it
        (see `Tenant`), holding one of the scopes the endpoint needs (see `scopes`)."""
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise TenantError(401, "Missing authentication", "missing_authentication")
        token = auth[7:].strip()
        keys = tuple(key.kid for key in tenant.keys)
        cached = verified_tokens.get(token)
        if cached is None or cached[0] <= time.time() or cached[1] != keys:
            try:
                claims = tenant.decode(token, audience=tenant.management_audience)
            except jwt.ExpiredSignatureError:
                raise TenantError(
                    401, "Expired token received for JSON Web Token validation", "invalid_token"
                ) from None
            except jwt.InvalidTokenError:
                raise TenantError(401, "Invalid token", "invalid_token") from None
            if len(verified_tokens) > 1000:
                verified_tokens.clear()
            # Valid only with the same signing keys: rotating them must invalidate old tokens.
            cached = (
                float(claims["exp"]),
                keys,
                str(claims["iss"]),
                frozenset(str(claims.get("scope", "")).split()),
                str(claims.get("azp", "")),
            )
            verified_tokens[token] = cached
        # Changes made while serving this request are logged as made by this client.
        ACTOR.set(cached[4])
        if not tenant.strict:
            return
        if cached[2] != tenant.issuer_for_host(request.headers.get("host")):
            # Auth0 considers a token from the other domain invalid here.
            raise TenantError(401, "Invalid token", "invalid_token")
        route = request.scope.get("route")
        template = str(getattr(route, "path", "")).removeprefix("/api/v2")
        needed = ENDPOINT_SCOPES[(request.method, template)]
        if insufficient(needed, cached[3]):
            raise TenantError(
                403,
                f"Insufficient scope, expected any of: {','.join(needed)}",
                "insufficient_scope",
            )

    router = APIRouter(dependencies=[Depends(management_token)])

    def paged(
        items: list[Any],
        key: str,
        page: int,
        per_page: int,
        include_totals: bool,
        total: int | None = None,
    ) -> Any:
        window = items[page * per_page : (page + 1) * per_page]
        if not include_totals:
            return window
        return {
            "start": page * per_page,
            "limit": per_page,
            "length": len(window),
            "total": total if total is not None else len(items),
            key: window,
        }

    def bool_param(value: str | None, default: bool) -> bool:
        return default if value is None else value.lower() == "true"

    def page_params(request: Request) -> tuple[int, int, bool]:
        query = request.query_params
        try:
            page = int(query.get("page", 0))
            per_page = int(query.get("per_page", 50))
        except ValueError:
            raise TenantError(
                400,
                "Query validation error: page and per_page must be integers",
                "invalid_query_string",
            ) from None
        if page < 0 or not 1 <= per_page <= 100:
            raise TenantError(
                400,
                "Query validation error: per_page must be between 1 and 100",
                "invalid_query_string",
            )
        return page, per_page, bool_param(query.get("include_totals"), False)

    @router.get("/users")
    async def list_users(request: Request) -> Any:
        page, per_page, include_totals = page_params(request)
        if page * per_page >= MAX_PAGED_RESULTS:
            raise TenantError(
                400,
                "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation",
                "invalid_paging",
            )
        query = request.query_params
        clauses = compile_query(query["q"]) if query.get("q") else []
        exact_email = [
            v.strip('"') for f, v in clauses if f == "email" and "*" not in v and "?" not in v
        ]
        if exact_email:
            # The common lookup; answer it from the index instead of scanning every user.
            candidates = tenant.users_by_email(exact_email[0])
        else:
            candidates = [tenant.users[user_id] for user_id in tenant.user_order]
        if tenant.search_lag_s > 0:
            indexed = (tenant.searchable(user) for user in candidates)
            candidates = [user for user in indexed if user is not None]
        users = [u for u in candidates if user_matches(u, clauses)] if clauses else candidates
        if query.get("connection"):
            users = [
                u
                for u in users
                if any(i["connection"] == query["connection"] for i in u["identities"])
            ]
        if query.get("sort"):
            field, _, direction = query["sort"].partition(":")
            users = sorted(
                users, key=lambda u: str(lookup(u, field) or ""), reverse=direction == "-1"
            )
        # Page first, then project: a 100k-user tenant must not copy every user per call.
        # "Auth0 limits the total number of users you can retrieve to 1000" (View Search
        # Results by Page), and the `total` it reports stops there too: a search of 5000
        # matches says 1000. Lenient, the true count.
        total = min(len(users), MAX_PAGED_RESULTS) if tenant.strict else len(users)
        window = [
            project(u, query.get("fields"), bool_param(query.get("include_fields"), True))
            for u in users[page * per_page : (page + 1) * per_page]
        ]
        if not include_totals:
            return window
        return {
            "start": page * per_page,
            "limit": per_page,
            "length": len(window),
            "total": total,
            "users": window,
        }

    @router.post("/users", status_code=201)
    async def create_user(request: Request) -> dict[str, Any]:
        return tenant.create_user(await request.json())

    @router.get("/users/{user_id}")
    async def get_user(user_id: str, request: Request) -> dict[str, Any]:
        query = request.query_params
        return project(
            tenant.get_user(user_id),
            query.get("fields"),
            bool_param(query.get("include_fields"), True),
        )

    @router.patch("/users/{user_id}")
    async def update_user(user_id: str, request: Request) -> dict[str, Any]:
        return tenant.update_user(user_id, await request.json())

    @router.delete("/users/{user_id}", status_code=204)
    async def delete_user(user_id: str) -> Response:
        tenant.delete_user(user_id)
        return Response(status_code=204)

    @router.get("/users-by-email")
    async def users_by_email(email: str) -> list[dict[str, Any]]:
        return tenant.users_by_email(email)

    @router.get("/users/{user_id}/roles")
    async def user_roles(user_id: str, request: Request) -> Any:
        tenant.get_user(user_id)
        page, per_page, include_totals = page_params(request)
        return paged(tenant.roles_of(user_id), "roles", page, per_page, include_totals)

    @router.post("/users/{user_id}/roles", status_code=204)
    async def assign_user_roles(user_id: str, request: Request) -> Response:
        tenant.assign_roles(user_id, list((await request.json()).get("roles", [])))
        return Response(status_code=204)

    @router.delete("/users/{user_id}/roles", status_code=204)
    async def remove_user_roles(user_id: str, request: Request) -> Response:
        tenant.remove_roles(user_id, list((await request.json()).get("roles", [])))
        return Response(status_code=204)

    @router.post("/users/{user_id}/identities", status_code=201)
    async def link_identity(user_id: str, request: Request) -> list[dict[str, Any]]:
        body = await request.json()
        provider, other = body.get("provider"), body.get("user_id")
        if not provider or not other:
            raise TenantError(
                400,
                "Payload validation error: 'provider' and 'user_id' are required.",
                "invalid_body",
            )
        return tenant.link_accounts(user_id, f"{provider}|{other}")

    @router.delete("/users/{user_id}/refresh-tokens", status_code=204)
    async def revoke_refresh_tokens(user_id: str) -> Response:
        tenant.get_user(user_id)
        tenant.revoked_refresh_tokens[user_id] = tenant.revoked_refresh_tokens.get(user_id, 0) + 1
        return Response(status_code=204)

    @router.get("/roles")
    async def list_roles(request: Request) -> Any:
        page, per_page, include_totals = page_params(request)
        roles = sorted(tenant.roles.values(), key=lambda r: r["name"])
        name_filter = request.query_params.get("name_filter")
        if name_filter:
            roles = [r for r in roles if name_filter.lower() in r["name"].lower()]
        return paged(roles, "roles", page, per_page, include_totals)

    @router.post("/roles", status_code=200)
    async def create_role(request: Request) -> dict[str, Any]:
        body = await request.json()
        if not body.get("name"):
            raise TenantError(
                400, "Payload validation error: 'Missing required property: name'.", "invalid_body"
            )
        return tenant.create_role(body["name"], body.get("description"))

    @router.get("/roles/{role_id}")
    async def get_role(role_id: str) -> dict[str, Any]:
        return tenant.get_role(role_id)

    @router.patch("/roles/{role_id}")
    async def update_role(role_id: str, request: Request) -> dict[str, Any]:
        return tenant.update_role(role_id, await request.json())

    @router.delete("/roles/{role_id}", status_code=204)
    async def delete_role(role_id: str) -> Response:
        tenant.delete_role(role_id)
        return Response(status_code=204)

    @router.get("/roles/{role_id}/users")
    async def role_users(role_id: str, request: Request) -> Any:
        query = request.query_params
        if "from" in query or "take" in query:
            take = min(max(int(query.get("take", 50)), 1), 100)
            after = None
            if query.get("from"):
                try:
                    after = bytes.fromhex(query["from"]).decode()
                except ValueError:
                    raise TenantError(400, "Invalid checkpoint", "invalid_query_string") from None
            members, last = tenant.role_members_after(role_id, after, take)
            if state.faults.cut_pages:
                last = None
            users = [_role_user(tenant.users[user_id]) for user_id in members]
            return fast_json({"users": users, **({"next": last.encode().hex()} if last else {})})
        tenant.get_role(role_id)
        page, per_page, include_totals = page_params(request)
        if page * per_page >= MAX_PAGED_RESULTS:
            raise TenantError(
                400,
                "You can only page through the first 1000 records; use checkpoint pagination",
                "invalid_paging",
            )
        members = tenant.role_members[role_id]
        window = members[page * per_page : (page + 1) * per_page]
        users = [_role_user(tenant.users[user_id]) for user_id in window]
        if not include_totals:
            return users
        return {"start": page * per_page, "limit": per_page, "total": len(members), "users": users}

    def _role_user(user: dict[str, Any]) -> dict[str, Any]:
        return {k: user.get(k) for k in ("user_id", "email", "name", "picture")}

    @router.post("/roles/{role_id}/users", status_code=200)
    async def assign_role_users(role_id: str, request: Request) -> Response:
        tenant.get_role(role_id)
        users = (await request.json()).get("users", [])
        for user_id in users:
            tenant.assign_roles(user_id, [role_id], logged=False)
        tenant.log_api_call("POST", f"/api/v2/roles/{role_id}/users", {"users": list(users)})
        return Response(status_code=200)

    def job_body(job: ExportJob, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": job.id,
            "type": "users_export",
            "created_at": job.created_at,
            "connection_id": job.connection_id,
            "format": job.format,
        }
        elapsed = time.monotonic() - job.created
        if elapsed < state.faults.export_delay_s:
            body.update(
                status="processing" if elapsed > 0 else "pending",
                percentage_done=int(100 * elapsed / state.faults.export_delay_s),
                time_left_seconds=1,
            )
        elif job.fail:
            body.update(status="failed", status_details="The export job failed (injected)")
        else:
            extension = "json.gz" if job.format == "json" else "csv.gz"
            body.update(
                status="completed",
                percentage_done=100,
                location=str(request.url_for("export_download", job_id=job.id)).replace(".gz", "")
                + f".{extension}?{tenant.sign_export_location(job.id, completed=job.created + state.faults.export_delay_s, stale=state.faults.take_stale_location())}",
            )
        return body

    @router.post("/jobs/users-exports", status_code=201)
    async def create_export(request: Request) -> dict[str, Any]:
        if not state.faults.exports_enabled:
            raise TenantError(
                403, "This feature is not available on the Free plan.", "operation_not_supported"
            )
        body = await request.json()
        if body.get("format", "json") not in ("json", "csv"):
            raise TenantError(400, "format must be json or csv", "invalid_body")
        job = tenant.create_export(body, fail=state.faults.fail_exports)
        return job_body(job, request)

    @router.get("/jobs/{job_id}")
    async def get_job(job_id: str, request: Request) -> dict[str, Any]:
        job = tenant.jobs.get(job_id)
        if job is None:
            raise TenantError(404, "The job does not exist", "inexistent_job")
        return job_body(job, request)

    @router.post("/jobs/verification-email", status_code=201)
    async def verification_email(request: Request) -> dict[str, Any]:
        body = await request.json()
        user = tenant.get_user(body.get("user_id", ""))
        tenant.outbox.append(
            {"type": "verification_email", "user_id": user["user_id"], "email": user["email"]}
        )
        return {
            "id": f"job_{secrets.token_hex(8)}",
            "status": "pending",
            "type": "verification_email",
            "created_at": iso_now(),
        }

    @router.post("/tickets/password-change", status_code=201)
    async def password_change_ticket(request: Request) -> dict[str, Any]:
        body = await request.json()
        if body.get("user_id"):
            user = tenant.get_user(body["user_id"])
        else:
            found = tenant.users_by_email(body.get("email", ""))
            if not found:
                raise TenantError(404, "The user does not exist.", "inexistent_user")
            user = found[0]
        ticket = f"{tenant.base_url}/lo/reset?ticket={secrets.token_urlsafe(16)}"
        tenant.outbox.append(
            {"type": "password_change_ticket", "user_id": user["user_id"], "ticket": ticket}
        )
        return {"ticket": ticket}

    return router
