"""Domain errors. Services raise these; one handler in main.py renders them as
`{"detail": ..., "error": <code>}` with the class's status. Anything else that escapes
a request is a bug and becomes a logged 500."""

from typing import Any, ClassVar


class AppError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    # True: the unit of work commits what was written before this was raised.
    keep_changes: bool = False

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        keep_changes: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.keep_changes = keep_changes
        self.extra = extra

    def body(self) -> dict[str, Any]:
        # `message` too: the portal shows `message` in its alerts, `detail` elsewhere.
        return {"detail": self.detail, "message": self.detail, "error": self.code, **self.extra}


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, detail: str = "not authenticated", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"


class UpstreamError(AppError):
    """An upstream (Auth0, email provider) answered with an error we cannot recover from."""

    status_code = 502
    code = "upstream_error"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 5, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(retry_after_s)})
        super().__init__(detail, **kwargs)


class InvalidFields(AppError):
    """Bad form input, in the shape the portal's forms read."""

    status_code = 400
    code = "invalid_data"

    def __init__(
        self,
        field_errors: list[dict[str, str]],
        message: str | None = None,
        *,
        keep_changes: bool = False,
    ) -> None:
        # One problem: its own words, which the portal shows where a field has no place
        # on the page ("Username is already taken"); several: a summary.
        if message is None:
            message = (
                field_errors[0]["message"] if len(field_errors) == 1 else "Invalid data submitted"
            )
        super().__init__(message, keep_changes=keep_changes)
        self.field_errors = field_errors

    def body(self) -> dict[str, object]:
        return {
            "message": self.detail,
            "detail": self.detail,
            "error": self.code,
            "field_errors": self.field_errors,
        }
