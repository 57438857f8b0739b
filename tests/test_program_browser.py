"""The program page in a real headless browser (Debian's chromium and chromedriver): sign in
through the fake OpenID provider, see the funnel, change the period, download a CSV and
read it back, and be refused another workspace's pages — at a phone's width.

Skipped without chromium and chromedriver, except in CI (`.ci/run` installs them), where
their absence fails the test.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from bot.app import build
from testing.fakes.clock import FrozenClock
from testing.fakes.oidc import FakeOIDC
from testing.fakes.slack_api import FakeSlack
from tests.conftest import slack_settings
from tests.program_http import seed
from tests.test_digest_figures import SEND

T = TypeVar("T")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
PHONE = (390, 844)

if not (CHROMIUM and DRIVER):
    if os.environ.get("CI") == "true":
        pytest.fail("chromium and chromedriver are required in CI", pytrace=False)
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """A headless chromium driven from async tests: each call runs off the event loop."""

    def __init__(self, downloads: Path) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM or ""
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            f"--window-size={PHONE[0]},{PHONE[1]}",
        ):
            options.add_argument(argument)
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(downloads),
                "download.prompt_for_download": False,
            },
        )
        self.driver = webdriver.Chrome(
            options=options, service=webdriver.ChromeService(executable_path=DRIVER)
        )
        self.downloads = downloads

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)

    async def get(self, url: str) -> None:
        await self.run(self.driver.get, url)

    async def click(self, by: str, value: str) -> None:
        element = await self.run(self.driver.find_element, by, value)
        await self.run(element.click)

    async def text(self, by: str = By.TAG_NAME, value: str = "main") -> str:
        element = await self.run(self.driver.find_element, by, value)
        return await self.run(lambda: element.text)

    async def rows(self, table: str) -> dict[str, list[str]]:
        def read() -> dict[str, list[str]]:
            found = {}
            for row in self.driver.find_elements(By.CSS_SELECTOR, f"#table-{table} tbody tr"):
                cells = [c.text for c in row.find_elements(By.CSS_SELECTOR, "th, td")]
                found[cells[0]] = cells[1:]
            return found

        return await self.run(read)

    async def at(self, url: str, seconds: float = 10) -> bool:
        """Whether the browser reaches `url` (a click's navigation finishes after the click)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await self.run(lambda: self.driver.current_url) == url:
                return True
            await asyncio.sleep(0.05)
        return False

    async def wait_for_download(self, name: str, seconds: float = 20) -> Path:
        deadline = time.monotonic() + seconds
        path = self.downloads / name
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size:
                return path
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name} was not downloaded: {list(self.downloads.iterdir())}")

    def close(self) -> None:
        self.driver.quit()


@pytest.fixture
async def served(
    migrated_url: str, fake_slack: FakeSlack, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[tuple[str, FakeOIDC, Browser]]:
    fake = FakeOIDC()
    await fake.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = slack_settings(
        migrated_url,
        fake_slack,
        slack_client_id=fake.client_id,
        slack_client_secret=fake.client_secret,
        slack_openid_url=fake.url,
        public_base_url=base,
    )
    clock.set(SEND)
    flywheel = build(settings, clock=clock)
    await seed(flywheel)
    runner = web.AppRunner(flywheel.web_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser = await asyncio.to_thread(Browser, downloads)
    try:
        yield base, fake, browser
    finally:
        await asyncio.to_thread(browser.close)
        await runner.cleanup()
        await flywheel.close()
        await fake.close()


async def test_an_admin_signs_in_reads_the_funnel_changes_the_period_and_downloads_it(
    served: tuple[str, FakeOIDC, Browser],
) -> None:
    base, fake, browser = served
    fake.sign_in_as_slack("T0001", "UADMIN", name="Ada")
    await browser.get(base + "/")
    await browser.click(By.LINK_TEXT, "Sign in with Slack")
    assert await browser.at(base + "/program")
    assert (await browser.text(By.TAG_NAME, "h1")) == "Overview"
    funnel = await browser.rows("funnel")
    assert funnel["Requests"][0] == "5" and funnel["Wins"][0] == "2"
    # Usable at a phone's width: nothing wider than the screen but the tables' own scroll.
    overflow = await browser.run(
        browser.driver.execute_script,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
    )
    assert overflow <= 0

    await browser.run(
        lambda: Select(browser.driver.find_element(By.ID, "weeks")).select_by_value("4")
    )
    await browser.click(By.CSS_SELECTOR, "form.period button[name=period]")
    assert await browser.at(base + "/program?weeks=4&period=weeks")
    assert "Last 4 weeks (03 Nov 2026 – 30 Nov 2026)" in await browser.text()
    funnel = await browser.rows("funnel")
    assert funnel["Requests"] == ["5", "0", "new"]
    assert funnel["Clicks (people only)"] == ["14", "0", "new"]

    await browser.click(By.PARTIAL_LINK_TEXT, "as CSV")
    path = await browser.wait_for_download("flywheel-overview-funnel-2026-11-03-to-2026-11-30.csv")
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
    assert rows[0] == ["Stage", "This period", "Period before", "Change"]
    assert ["Requests", "5", "0", "new"] in rows and ["'+1s on requests", "1", "0", "new"] in rows

    await browser.get(base + "/program?from=2026-11-29&to=2026-11-01")
    assert "The start date (2026-11-29) is after the end date (2026-11-01)" in (
        await browser.text(By.ID, "error")
    )

    await browser.click(By.LINK_TEXT, "Trends")
    assert await browser.at(base + "/program/trends")
    svg_title = await browser.run(
        lambda: browser.driver.find_element(By.ID, "chart-clicks-title").get_attribute(
            "textContent"
        )
    )
    assert svg_title == "Clicks"


async def test_another_workspace_is_refused(served: tuple[str, FakeOIDC, Browser]) -> None:
    base, fake, browser = served
    fake.sign_in_as_slack("T0001", "UALICE", name="Alice")
    await browser.get(base + "/")
    await browser.click(By.LINK_TEXT, "Sign in with Slack")
    assert await browser.at(base + "/program/people/UALICE")
    await browser.get(base + "/program")
    assert "for admins and reviewers" in await browser.text()
    await browser.click(By.CSS_SELECTOR, "form.signout button")
    assert await browser.at(base + "/")

    fake.sign_in_as_slack("T0002", "UZED", name="Zed")
    await browser.click(By.LINK_TEXT, "Sign in with Slack")
    assert await browser.at(base + "/program")
    await browser.get(base + "/program/people/UALICE")
    main = await browser.text()
    assert "Not found" in main and "No such person." in main and "Alice" not in main
