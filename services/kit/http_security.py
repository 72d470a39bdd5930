"""Response headers every answer carries: no MIME sniffing, no framing, no referrer
leaks, and (in production, behind TLS) HSTS. The API's JSON also gets a CSP that allows
nothing; HTML pages (/docs, /db-admin) keep their own scripts and styles."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BASE = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
JSON_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [h for h in BASE if h[0] not in present]
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"application/json") and JSON_CSP[0] not in present:
                    extra.append(JSON_CSP)
                if self.hsts:
                    extra.append(HSTS)
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, with_headers)
