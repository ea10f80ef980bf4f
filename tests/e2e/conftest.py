"""The browser for the whole-stack tests: one Chromium per module, a Browser per test bound to
the stack the test runs on (each module may serve its own)."""

from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest_stack import Stack
from tests.e2e.browser import Browser, chromium


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    with chromium() as chrome:
        yield chrome


@pytest.fixture
def browser(driver: WebDriver, stack: Stack) -> Browser:
    return Browser(driver, stack.backend)
