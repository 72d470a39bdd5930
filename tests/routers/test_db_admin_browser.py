"""/db-admin in a real browser: Debian's Chromium driven by Playwright against the API
served by uvicorn and the Auth0 emulator's login page, both over real HTTP.

Needs /usr/bin/chromium (`apt-get install chromium`; `.ci/run` installs it). A screenshot
of the users list is saved to var/test-artifacts/db-admin-users.png.
"""

import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy.engine import URL

from main import create_app
from scripts.auth0_emulator.server import EmulatorServer, free_port
from tests.routers.db_admin_world import dashboard_settings, person

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"


@pytest.fixture
def live_api(dashboard_db: URL, emulator: EmulatorServer) -> Iterator[str]:
    app = create_app(dashboard_settings(dashboard_db, emulator))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        assert thread.is_alive(), "the API stopped while starting"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def chromium_path() -> str:
    assert CHROMIUM.exists(), "browser tests need Debian's Chromium: apt-get install chromium"
    return str(CHROMIUM)


@pytest.fixture
async def chromium(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--no-sandbox"]
        )
        yield browser
        await browser.close()


def screenshot_path() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / "db-admin-users.png"


async def log_in(page: Page, start: str, email: str) -> None:
    """Open `start`, get sent to the emulator's login page, pick `email` there."""
    await page.goto(start)
    await page.get_by_role("link", name=email).click()
    await page.wait_for_load_state("networkidle")


async def test_a_general_admin_logs_in_searches_and_reads(
    chromium: Browser, live_api: str, emulator: EmulatorServer
):
    email = person(emulator, "Admin")
    page = await (await chromium.new_context()).new_page()

    await log_in(page, f"{live_api}/db-admin/users/list", email)

    assert page.url == f"{live_api}/db-admin/users/list"
    await page.get_by_text("dash000@example.org").first.wait_for()
    image = await page.screenshot(path=str(screenshot_path()), full_page=True)
    assert len(image) > 10_000

    search = page.locator('input[name="q"]')
    await search.fill("user_012")
    await search.press("Enter")
    await page.wait_for_url("**q=user_012**")
    assert await page.get_by_text("dash012@example.org").count() >= 1
    assert await page.get_by_text("dash013@example.org").count() == 0

    await page.locator('a[href*="/users/detail"]').first.click()
    await page.wait_for_url("**/users/detail?pk=**")
    assert await page.get_by_text("dash_user_012").count() >= 1

    await page.get_by_role("link", name="Scheduler runs").first.click()
    await page.wait_for_url("**/scheduler-runs/list**")
    assert await page.get_by_text("sync.users.full").count() >= 1


async def test_someone_without_an_admin_role_is_refused(
    chromium: Browser, live_api: str, emulator: EmulatorServer
):
    email = person(emulator)
    page = await (await chromium.new_context()).new_page()

    await log_in(page, f"{live_api}/db-admin/", email)

    assert await page.get_by_role("heading", name="Access refused").count() == 1
    assert await page.get_by_text(email).count() >= 1


async def test_logged_out_access_goes_to_the_login(
    chromium: Browser, live_api: str, emulator: EmulatorServer
):
    page = await (await chromium.new_context()).new_page()

    await page.goto(f"{live_api}/db-admin/email-queue/list")

    # The login page is on the custom domain, where users log in too.
    assert page.url.startswith(f"{emulator.custom_url}/authorize?")
    assert "redirect_uri=http%3A%2F%2F127.0.0.1" in page.url
    assert await page.get_by_role("heading", name="Log in as").count() == 1
