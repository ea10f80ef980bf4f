"""For the whole-stack tests: one Chromium per module, a Browser per test bound to the stack the
test runs on (each module may serve its own), and one webhook receiver per module."""

from collections.abc import AsyncIterator, Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest_stack import Stack
from tests.e2e.browser import Browser, chromium
from tests.e2e.hooks import Receiver, receiving


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    with chromium() as chrome:
        yield chrome


@pytest.fixture
def browser(driver: WebDriver, stack: Stack) -> Browser:
    return Browser(driver, stack.backend)


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """A webhook receiver per module, and the base URL its endpoints live under."""
    async with receiving() as served:
        yield served
