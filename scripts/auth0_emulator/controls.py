"""What the emulator serves besides Auth0's APIs: export downloads (the `location` of a
finished export job), reCAPTCHA's siteverify, and `/_emulator/*` controls for tests."""

import csv
import gzip
import io
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from scripts.auth0_emulator.app import FAULT_SETTINGS, EmulatorState
from scripts.auth0_emulator.search import export_line
from scripts.auth0_emulator.tenant import (
    TenantError,
)

GZIP_MEMBER_LINES = 500  # lines per gzip member of an export file


def control_routes(state: EmulatorState) -> APIRouter:
    tenant = state.tenant
    router = APIRouter()

    @router.get("/_emulator/exports/{job_id}", name="export_download")
    async def export_download(job_id: str, request: Request) -> Response:
        """The pre-signed link of a finished export: refused once expired (the S3-style
        403 a stale link gets), else the file, gzip in several members (as large exports
        are written in parts), which a reader must take as one stream."""
        job = tenant.jobs.get(job_id.split(".")[0])
        if job is None or job.fail:
            return Response(status_code=404)
        query = request.query_params
        if not tenant.export_link_valid(
            job.id, query.get("expires", ""), query.get("signature", "")
        ):
            return Response(
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                status_code=403,
                media_type="application/xml",
            )
        with tenant.lock:
            users = [tenant.users[user_id] for user_id in tenant.user_order]
        if job.connection_id:
            users = [
                u
                for u in users
                if any(i["connection"] == job.connection_id for i in u["identities"])
            ]
        if job.limit:
            users = users[: job.limit]
        if job.format == "json":
            payload = "".join(json.dumps(export_line(u, job.fields)) + "\n" for u in users)
        else:
            buffer = io.StringIO()
            names = [
                f.get("export_as") or f["name"]
                for f in (job.fields or [{"name": "user_id"}, {"name": "email"}])
            ]
            writer = csv.writer(buffer)
            writer.writerow(names)
            for user in users:
                line = export_line(user, job.fields or [{"name": "user_id"}, {"name": "email"}])
                writer.writerow([line.get(name) for name in names])
            payload = buffer.getvalue()
        lines = payload.encode().splitlines(keepends=True)
        members = [
            gzip.compress(b"".join(lines[start : start + GZIP_MEMBER_LINES]), compresslevel=1)
            for start in range(0, max(len(lines), 1), GZIP_MEMBER_LINES)
        ]
        return Response(b"".join(members), media_type="application/gzip")

    @router.post("/recaptcha/api/siteverify")
    async def recaptcha_siteverify(request: Request) -> dict[str, Any]:
        """A stand-in for Google's endpoint: any token not starting with "bad" passes."""
        form = await request.form()
        token = str(form.get("response") or "")
        if not form.get("secret"):
            return {"success": False, "error-codes": ["missing-input-secret"]}
        if not token or token.startswith("bad"):
            return {"success": False, "error-codes": ["invalid-input-response"]}
        return {"success": True, "hostname": "127.0.0.1"}

    @router.get("/_emulator/state")
    async def emulator_state() -> dict[str, Any]:
        return {
            "users": len(tenant.users),
            "roles": len(tenant.roles),
            "rate_limit": state.rate_limit,
            "throttled": state.throttled,
            "requests": state.requests,
            "management_tokens_issued": tenant.management_tokens_issued,
            "outbox": len(tenant.outbox),
        }

    @router.post("/_emulator/config")
    async def configure(request: Request) -> dict[str, Any]:
        body = await request.json()
        if "rate_limit" in body:
            state.set_rate_limit(body["rate_limit"])
        for key in FAULT_SETTINGS:
            if key in body:
                setattr(state.faults, key, body[key])
        return {
            "rate_limit": state.rate_limit,
            "faults": {key: getattr(state.faults, key) for key in FAULT_SETTINGS},
        }

    @router.post("/_emulator/tokens")
    async def mint(request: Request) -> dict[str, Any]:
        body = await request.json()
        user = tenant.find_user(str(body.get("user", "")))
        if user is None:
            raise TenantError(404, "The user does not exist.", "inexistent_user")
        roles = body.get("roles")
        if roles is not None:
            # A real tenant's token names the roles the user holds (the login Action reads
            # them), so asking for roles gives them to the user first: the backend confirms
            # admin roles with the Management API before admin writes.
            tenant.grant_roles(user["user_id"], [str(name) for name in roles])
        token = tenant.mint_access_token(user["user_id"], expires_in=body.get("expires_in"))
        return {"access_token": token, "token_type": "Bearer", "user_id": user["user_id"]}

    return router
