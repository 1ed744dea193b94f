"""The search page in real headless Chromium (Debian's `chromium`), driven by Playwright, against a real server."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from semsearch.server.launch import CHROMIUM, CHROMIUM_ARGS, RunningServer, start_server, stop_server

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install 'semsearch[browser-tests]'")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (CI's .ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def expected_hits(server: RunningServer, query: str) -> list[dict]:
    return server.request("/search?" + urllib.parse.urlencode({"q": query, "k": 10})).body["hits"]


def test_results_appear_as_you_type(server: RunningServer, page) -> None:
    page.goto(server.url)
    page.locator("#query").press_sequentially("bushfire recovery in canberra", delay=30)  # no Enter: results as you type
    hit = page.locator(".hit", has_text="canberra rebuilds after bushfires")
    sync_api.expect(hit).to_be_visible()
    expected = next(h for h in expected_hits(server, "bushfire recovery in canberra") if h["text"] == "canberra rebuilds after bushfires")
    sync_api.expect(hit.locator(".score")).to_have_text(f"{expected['score']:.3f}")
    sync_api.expect(hit.locator("time")).to_have_text(expected["date"])
    sync_api.expect(page.locator(".hit")).to_have_count(10)
    sync_api.expect(page.locator("#about")).to_contain_text("3,000 documents")
    assert "q=bushfire+recovery+in+canberra" in page.url  # the address can be shared


def test_clicking_an_example_searches_for_it(server: RunningServer, page) -> None:
    page.goto(server.url)
    example = page.locator(".example").first
    text = example.inner_text().strip()
    example.click()
    sync_api.expect(page.locator("#query")).to_have_value(text)
    sync_api.expect(page.locator(".hit .text")).to_have_text([hit["text"] for hit in expected_hits(server, text)])


def test_a_query_in_the_address_is_searched_on_load(server: RunningServer, page) -> None:
    page.goto(server.url + "/?q=flood+warning")
    sync_api.expect(page.locator("#query")).to_have_value("flood warning")
    sync_api.expect(page.locator(".hit .text").first).to_have_text(expected_hits(server, "flood warning")[0]["text"])


def test_the_servers_complaint_is_shown(server: RunningServer, page) -> None:
    page.goto(server.url)
    page.locator("#query").fill("flood " * 400)
    status = page.locator("#status")
    sync_api.expect(status).to_have_class("error")
    sync_api.expect(status).to_contain_text("q: String should have at most 2000 characters")
    sync_api.expect(page.locator(".hit")).to_have_count(0)


def test_a_server_that_stopped_is_reported(small_real_collection, page, tmp_path: Path) -> None:
    running = start_server(small_real_collection.path, tmp_path / "server.log")
    try:
        page.goto(running.url)
        page.locator("#query").fill("flood warning")
        sync_api.expect(page.locator(".hit")).to_have_count(10)
    finally:
        stop_server(running)
    page.locator("#query").fill("cricket world cup")
    sync_api.expect(page.locator("#status")).to_contain_text("Cannot reach the server")
    sync_api.expect(page.locator(".hit")).to_have_count(0)


def test_the_page_needs_nothing_from_elsewhere(server: RunningServer, page) -> None:
    """Works offline: every request the page makes goes to the server it came from."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server.url)
    page.locator("#query").fill("flood warning")
    sync_api.expect(page.locator(".hit")).to_have_count(10)
    assert requested and all(url.startswith(server.url + "/") for url in requested), requested


def test_nothing_matches_is_said(tiny_collection_path: Path, page, tmp_path: Path) -> None:
    from semsearch import Collection

    running = start_server(tiny_collection_path, tmp_path / "server.log")
    try:
        with Collection.open(tiny_collection_path) as collection:
            collection.remove(range(20))  # every document: nothing can match now
        deadline = time.monotonic() + 15  # the server looks for updates once a second at most
        while expected_hits(running, "bushfire victims") and time.monotonic() < deadline:
            time.sleep(0.2)
        page.goto(running.url)
        page.locator("#query").fill("bushfire victims")
        sync_api.expect(page.locator("#status")).to_contain_text("Nothing matches “bushfire victims”", timeout=15_000)
        sync_api.expect(page.locator(".hit")).to_have_count(0)
    finally:
        stop_server(running)


def test_the_api_documentation_works_offline(server: RunningServer, page) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server.url + "/docs")
    sync_api.expect(page.locator(".opblock-summary-path", has_text="/search")).to_have_count(2)  # GET and POST
    sync_api.expect(page.locator(".opblock-summary-path", has_text="/info")).to_have_count(1)
    assert all(url.startswith(server.url + "/") for url in requested), requested


def test_options_change_the_search(server: RunningServer, page) -> None:
    page.goto(server.url)
    page.locator("#query").fill("rain relief")
    sync_api.expect(page.locator(".hit")).to_have_count(10)
    page.locator("#mode").select_option("keyword")
    keyword = server.request("/search?" + urllib.parse.urlencode({"q": "rain relief", "k": 10, "mode": "keyword"})).body["hits"]
    sync_api.expect(page.locator(".hit .text")).to_have_text([hit["text"] for hit in keyword])
    page.locator("#date-from").fill("2010-01-01")  # after every headline of the collection
    sync_api.expect(page.locator("#status")).to_contain_text("Nothing matches “rain relief”")
    sync_api.expect(page.locator(".hit")).to_have_count(0)
    assert "mode=keyword" in page.url and "date_from=2010-01-01" in page.url


def test_a_server_with_a_token_is_searched_from_the_page(small_real_collection, browser, tmp_path: Path) -> None:
    """Opened once as /?token=TOKEN, the page keeps the token for the tab, drops it from the address and sends it."""
    token = "page-token-123"
    running = start_server(small_real_collection.path, tmp_path / "server.log", "--token", token)
    try:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(15_000)
        sent: list[str | None] = []
        page.on("request", lambda request: sent.append(request.headers.get("authorization")) if "/search?" in request.url else None)
        page.goto(running.url + f"/?token={token}&q=flood+warning")
        sync_api.expect(page.locator(".hit")).to_have_count(10)
        sync_api.expect(page.locator("#about")).to_contain_text("3,000 documents")
        assert "token" not in page.url and "q=flood+warning" in page.url
        page.reload()  # the address has no token now; the tab still has it
        page.locator("#query").fill("cricket world cup")
        sync_api.expect(page.locator(".hit")).to_have_count(10)
        assert sent and set(sent) == {f"Bearer {token}"}
        context.close()

        stranger = browser.new_context()  # a tab that was never given the token
        page = stranger.new_page()
        page.goto(running.url + "/?q=flood+warning")
        sync_api.expect(page.locator("#status")).to_contain_text("This server needs a token: open this page as /?token=TOKEN")
        sync_api.expect(page.locator(".hit")).to_have_count(0)
        stranger.close()
    finally:
        stop_server(running)
