"""reCAPTCHA v2 verification, pluggable: the URL comes from settings, so tests and the
local run use the emulator's fake siteverify endpoint."""

import logging

import httpx

from services.errors import ServiceUnavailable

logger = logging.getLogger("aai.recaptcha")


class RecaptchaVerifier:
    def __init__(self, http: httpx.AsyncClient, *, secret: str | None, verify_url: str) -> None:
        self._http = http
        self._secret = secret
        self._url = verify_url

    @property
    def enabled(self) -> bool:
        return bool(self._secret)

    async def verify(self, token: str, remote_ip: str | None = None) -> bool:
        if not self._secret:
            # Only possible outside production (settings refuse it there).
            logger.warning("RECAPTCHA_SECRET is not set: accepting the token unchecked")
            return True
        form = {"secret": self._secret, "response": token}
        if remote_ip:
            form["remoteip"] = remote_ip
        try:
            response = await self._http.post(self._url, data=form)
            response.raise_for_status()
            return bool(response.json().get("success"))
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceUnavailable(
                "the reCAPTCHA service cannot be reached; try again shortly"
            ) from exc
