"""A real headless Chromium (Debian's `chromium` and `chromium-driver`), driven by Selenium.

The server under test runs in the test's event loop, so every browser call runs in a thread
(`asyncio.to_thread`): the loop keeps serving while the browser waits for it. Waits are
Selenium's explicit waits (a condition polled under a deadline), never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# OMNIRELAY_CONSOLE_SCREENSHOTS=docs/console: the tests save the pages they open there (the README's)
SCREENSHOTS = os.environ.get("OMNIRELAY_CONSOLE_SCREENSHOTS")


def _available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists() and shutil.which(CHROMEDRIVER) is not None


def start_chromium() -> webdriver.Chrome:
    if not _available():
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are required in CI (.ci/run installs them)")
        pytest.skip("chromium / chromium-driver not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1360,900",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--disable-component-update",
    ):
        options.add_argument(arg)
    # the system's driver, named: Selenium Manager would otherwise look for one online
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


class Browser:
    """Async wrappers over one Chromium: each call runs in a thread."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.driver: webdriver.Chrome | None = None

    async def start(self) -> Browser:
        self.driver = await asyncio.to_thread(start_chromium)
        return self

    @property
    def d(self) -> webdriver.Chrome:
        assert self.driver is not None
        return self.driver

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def get(self, path: str) -> None:
        await self.run(self.d.get, self.base_url + path)

    async def find(self, css: str, timeout_s: float = 10) -> WebElement:
        def wait() -> WebElement:
            found: WebElement = WebDriverWait(self.d, timeout_s).until(
                lambda d: d.find_element(By.CSS_SELECTOR, css)
            )
            return found

        return await self.run(wait)

    async def all(self, css: str) -> list[WebElement]:
        return await self.run(self.d.find_elements, By.CSS_SELECTOR, css)

    async def until(self, condition: Callable[[webdriver.Chrome], Any], timeout_s: float = 10) -> Any:
        return await self.run(lambda: WebDriverWait(self.d, timeout_s).until(condition))

    async def fill(self, css: str, value: str) -> None:
        element = await self.find(css)

        def type_in() -> None:
            element.clear()
            element.send_keys(value)

        await self.run(type_in)

    async def click(self, css: str, timeout_s: float = 10) -> None:
        """Click a link or a form's button, and wait until the page it loads has replaced this
        one: an element read at once could still be the old page's, or go stale under the read."""
        element = await self.find(css)

        def click_and_leave() -> None:
            page = self.d.find_element(By.TAG_NAME, "html")
            element.click()
            WebDriverWait(self.d, timeout_s).until(expected_conditions.staleness_of(page))

        await self.run(click_and_leave)

    async def text(self, css: str) -> str:
        element = await self.find(css)
        return await self.run(lambda: element.text)

    async def script(self, js: str, *args: Any) -> Any:
        return await self.run(self.d.execute_script, js, *args)

    async def path(self) -> str:
        url: str = await self.run(lambda: self.d.current_url)
        return url.removeprefix(self.base_url)

    async def no_alert(self) -> bool:
        def check() -> bool:
            try:
                self.d.switch_to.alert  # noqa: B018 - the property raises when there is none
            except NoAlertPresentException:
                return True
            return False

        return await self.run(check)

    async def sign_in(self, username: str, password: str) -> None:
        await self.get("/console/login")
        await self.fill("#account-login input[name=username]", username)
        await self.fill("#account-login input[name=password]", password)
        await self.click("#account-login button[type=submit]")
        await self.find("nav .who")

    async def sign_in_operator(self, token: str) -> None:
        await self.get("/console/login")
        await self.fill("#operator-login input[name=token]", token)
        await self.click("#operator-login button[type=submit]")
        await self.find("nav .who[data-role=operator]")

    async def screenshot(self, name: str) -> None:
        """Saved into OMNIRELAY_CONSOLE_SCREENSHOTS when it is set; nothing otherwise."""
        if SCREENSHOTS:
            await self.run(self._save, Path(SCREENSHOTS), name)

    def _save(self, folder: Path, name: str) -> None:
        import base64

        folder.mkdir(parents=True, exist_ok=True)
        width, height = self.d.execute_script(
            "return [document.documentElement.clientWidth, document.documentElement.scrollHeight]"
        )
        # the whole page, not the window: Chromium's DevTools capture beyond the viewport
        shot = self.d.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 2400), "scale": 1},
            },
        )
        (folder / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        if self.driver is not None:
            await self.run(self.driver.quit)
            self.driver = None
