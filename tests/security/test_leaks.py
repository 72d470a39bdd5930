"""What an outsider must not reach or read: metrics through the load balancer, the API's
own documentation in production."""

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from services.settings import Settings
from tests.conftest import client_address, emulator_settings, make_settings


@pytest.fixture
async def public(
    app_factory: Callable[[Settings], FastAPI], pg_url, emulator
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with metrics on and docs at their production default, reached the way the
    load balancer reaches it."""
    settings = make_settings(
        pg_url,
        **emulator_settings(emulator),
        enable_prometheus_metrics=True,
        enable_api_docs=False,
        forwarded_allow_ips="127.0.0.1",
    )
    async with LifespanManager(app_factory(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


@pytest.mark.parametrize("path", ["/metrics", "/%6detrics", "/%6D%65trics"])
async def test_metrics_are_not_served_through_the_load_balancer(public, path):
    response = await public.get(path, headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 404, response.text
    assert "aai_http" not in response.text


async def test_the_scraper_inside_the_network_still_gets_metrics(public):
    response = await public.get("/metrics")
    assert response.status_code == 200
    assert "aai_http_request_duration_seconds" in response.text


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_api_docs_are_off_unless_enabled(public, path):
    assert (await public.get(path)).status_code == 404


async def test_api_docs_are_on_in_dev(client):
    assert (await client.get("/openapi.json")).status_code == 200


def test_loopback_addresses_for_tests_never_collide_with_the_proxy():
    assert client_address()[0] != "127.0.0.1"
