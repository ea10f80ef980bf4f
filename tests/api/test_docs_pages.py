"""/docs and /redoc work with no internet: every asset comes from the app, over real HTTP, and the
pages render in headless Chromium that can resolve one host name only, the app's.

The pages need neither the database nor Temporal, so the app is served alone (its Temporal client
is lazy and never used here).
"""

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from api.app import create_app
from config import Settings
from tests.conftest import unavailable
from tests.serving import served

HOST = "docs.tollgate.test"  # not localhost: Swagger UI treats local hosts differently
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
EXPECTED_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
}


class _Assets(HTMLParser):
    """Every URL a page loads by itself: <script src>, <link href>, <img src>."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def assets_of(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


@pytest.fixture(scope="module")
async def base_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    directory = tmp_path_factory.mktemp("docs")
    settings = Settings(
        database_url=f"sqlite:///{directory / 'tollgate.db'}",
        admin_token=secrets.token_urlsafe(24),
    )
    async with served(create_app(settings), settings) as base:
        yield base


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_every_asset_from_the_app_itself(base_url: str, page: str):
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "cdn." not in response.text and "googleapis" not in response.text
        assert "default-src 'self'" in response.headers["content-security-policy"]
        urls = assets_of(response.text)
        assert any(url.endswith(".js") for url in urls), urls
        for url in urls:
            absolute = urljoin(f"{base_url}{page}", url)
            assert urlsplit(absolute).netloc == urlsplit(base_url).netloc, url
            asset = await http.get(absolute)
            assert asset.status_code == 200, url
            expected = EXPECTED_TYPES[Path(urlsplit(absolute).path).suffix]
            assert expected in asset.headers["content-type"], (url, asset.headers)
            assert len(asset.content) > 1000, url
        document = await http.get("/openapi.json")
        assert document.status_code == 200
        assert "'/openapi.json'" in response.text or '"/openapi.json"' in response.text


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[WebDriver]:
    """Headless Chromium in which HOST is 127.0.0.1 and no other name resolves."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        unavailable("Chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1200,1600",
        f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP * ~NOTFOUND",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield chrome
    chrome.quit()


@dataclass
class Rendered:
    count: int  # elements matching the selector waited for
    text: str
    loaded: list[str]  # resources that answered
    refused: list[str]  # resources the browser never fetched
    log: list[str]  # the browser console


def on_host(base_url: str) -> str:
    return base_url.replace("127.0.0.1", HOST)


def render(driver: WebDriver, url: str, selector: str, name: str) -> Rendered:
    """Open ``url``, wait until ``selector`` matches, and report what the page fetched."""
    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    entries = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => [e.name, e.responseStatus])"
    )
    return Rendered(
        count=len(driver.find_elements(By.CSS_SELECTOR, selector)),
        text=driver.find_element(By.TAG_NAME, "body").text,
        loaded=[url for url, status in entries if status],
        refused=[url for url, status in entries if not status],
        log=[entry["message"] for entry in driver.get_log("browser")],
    )


async def test_swagger_ui_renders_the_operations_offline(base_url: str, offline_browser: WebDriver):
    origin = on_host(base_url)
    page = await asyncio.to_thread(
        render, offline_browser, f"{origin}/docs", ".opblock", "docs-swagger-ui"
    )
    assert page.count >= 20  # one block per operation
    assert "/v1/engagements" in page.text and "/v1/milestones/{milestone_id}/triggers" in page.text
    assert "Authorize" in page.text  # the bearer scheme: a token entered once is sent by every try
    assert page.loaded and all(url.startswith(origin) for url in page.loaded), page.loaded
    assert f"{origin}/openapi.json" in page.loaded
    assert page.refused == [], page.log  # nothing tried to leave: no validator badge, no CDN


async def test_redoc_renders_the_reference_offline(base_url: str, offline_browser: WebDriver):
    origin = on_host(base_url)
    page = await asyncio.to_thread(
        render, offline_browser, f"{origin}/redoc", "li[data-item-id]", "docs-redoc"
    )
    assert page.count >= 20  # the side menu lists the operations
    assert page.loaded and all(url.startswith(origin) for url in page.loaded), page.loaded
    assert f"{origin}/openapi.json" in page.loaded
    # ReDoc's one decorative remote image (the Redocly logo) is refused by the page's policy
    # before any request leaves the browser.
    for url in page.refused:
        assert any(url in line and "Content Security Policy" in line for line in page.log), url
