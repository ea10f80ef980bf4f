"""Headless Chromium through Selenium, for the approver page over real HTTP.

Selenium's calls block, so each runs in a thread: the server under test shares this event loop.
Screenshots land in test-artifacts/screenshots/.
"""

import asyncio
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import unavailable

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """Headless Chromium, or a skip (a failure with CI=true) when it is not installed."""
    binary, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and chromedriver):
        unavailable("Chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1100,1900")
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Browser:
    """Headless Chromium, each blocking WebDriver call run in a thread."""

    def __init__(self, driver: WebDriver, backend: str) -> None:
        self.driver, self.backend = driver, backend

    async def open(self, url: str) -> None:
        await asyncio.to_thread(self.driver.get, url)

    async def text(self) -> str:
        return await asyncio.to_thread(lambda: self.driver.find_element(By.TAG_NAME, "body").text)

    async def type(self, element_id: str, text: str) -> None:
        await asyncio.to_thread(lambda: self.driver.find_element(By.ID, element_id).send_keys(text))

    async def submit(self, button_id: str) -> None:
        """Press a form's button and wait for the page it leads to."""

        def press() -> None:
            self.driver.execute_script("window.beforeSubmit = true")
            self.driver.find_element(By.ID, button_id).click()
            WebDriverWait(self.driver, 15).until(
                lambda d: d.execute_script(
                    "return !window.beforeSubmit && document.readyState === 'complete'"
                )
            )

        await asyncio.to_thread(press)

    async def has(self, element_id: str) -> bool:
        found = await asyncio.to_thread(self.driver.find_elements, By.ID, element_id)
        return bool(found)

    async def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{self.backend}.png"
        await asyncio.to_thread(self.driver.save_screenshot, str(path))
