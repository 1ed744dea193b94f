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


# A collection that is not the ABC headlines: invented recipes with metadata, for the page's parts that must
# come from the collection it serves (issue 15): examples, name, metadata, more pages, similar texts.
RECIPES = [
    ("Creamy mushroom risotto with parmesan", {"cuisine": "italian", "minutes": 40, "vegetarian": True}),
    ("Spicy chickpea curry with spinach", {"cuisine": "indian", "minutes": 35, "vegetarian": True}),
    ("Grilled lemon chicken skewers", {"cuisine": "greek", "minutes": 25, "vegetarian": False}),
    ("Slow cooked beef stew with red wine", {"cuisine": "french", "minutes": 180, "vegetarian": False}),
    ("Crispy tofu stir fry with broccoli", {"cuisine": "chinese", "minutes": 20, "vegetarian": True}),
    ("Classic margherita pizza", {"cuisine": "italian", "minutes": 30, "vegetarian": True}),
    ("Fish tacos with lime slaw", {"cuisine": "mexican", "minutes": 25, "vegetarian": False}),
    ("Banana bread with walnuts", {"cuisine": "american", "minutes": 70, "vegetarian": True}),
    ("Pad thai with prawns and peanuts", {"cuisine": "thai", "minutes": 30, "vegetarian": False}),
    ("Lentil soup with cumin and carrots", {"cuisine": "turkish", "minutes": 45, "vegetarian": True}),
    ("Chocolate lava cakes", {"cuisine": "french", "minutes": 25, "vegetarian": True}),
    ("Salmon baked in foil with dill", {"cuisine": "nordic", "minutes": 30, "vegetarian": False}),
    ("Vegetable lasagne with ricotta", {"cuisine": "italian", "minutes": 75, "vegetarian": True}),
    ("Pork dumplings with ginger dipping sauce", {"cuisine": "chinese", "minutes": 60, "vegetarian": False}),
    ("Summer salad of tomato, feta and watermelon", {"cuisine": "greek", "minutes": 10, "vegetarian": True}),
    ("Beef burgers with caramelised onions", {"cuisine": "american", "minutes": 30, "vegetarian": False}),
    ("Mango sticky rice", {"cuisine": "thai", "minutes": 40, "vegetarian": True}),
    ("Black bean enchiladas with salsa verde", {"cuisine": "mexican", "minutes": 50, "vegetarian": True}),
    ("Roast lamb with rosemary and garlic", {"cuisine": "british", "minutes": 120, "vegetarian": False}),
    ("Pancakes with blueberries and maple syrup", {"cuisine": "american", "minutes": 20, "vegetarian": True}),
    ("Miso ramen with soft boiled egg", {"cuisine": "japanese", "minutes": 45, "vegetarian": False}),
    ("Falafel wraps with tahini sauce", {"cuisine": "lebanese", "minutes": 40, "vegetarian": True}),
    ("Apple crumble with custard", {"cuisine": "british", "minutes": 55, "vegetarian": True}),
    ("Shakshuka, eggs poached in tomato sauce", {"cuisine": "tunisian", "minutes": 30, "vegetarian": True,
                                                 "tags": ["brunch", "one pan"]}),
    # A stranger's collection may hold anything: markup in a text or a value must show as text, never run.
    ("Tomato <b>soup</b> with basil <img src=x onerror=\"window.pwned=1\">",
     {"cuisine": "<i>italian</i>", "minutes": 25, "note": "<script>window.pwned=2</script><img src=x onerror=\"window.pwned=3\">"}),
]
RECIPE_TEXTS = [text for text, _ in RECIPES]
ABC_EXAMPLES = ("bushfire recovery in canberra", "desafíos globales")


def build_recipes(path: Path, real_encoder) -> Path:
    import json

    from semsearch import Collection

    corpus = path.parent / "recipes.jsonl"
    corpus.write_text("".join(json.dumps({"id": number, "text": text, **meta}) + "\n" for number, (text, meta) in enumerate(RECIPES)))
    Collection.build(corpus, path, encoder=real_encoder).close()
    return path


@pytest.fixture(scope="module")
def recipes(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> Iterator[RunningServer]:
    """A server of recipes.semsearch: 25 invented recipe names with metadata, none an ABC headline."""
    directory = tmp_path_factory.mktemp("recipes")
    running = start_server(build_recipes(directory / "recipes.semsearch", real_encoder), directory / "server.log")
    yield running
    stop_server(running)


def api_hits(server: RunningServer, path: str, **parameters) -> list[dict]:
    return server.request(f"{path}?" + urllib.parse.urlencode(parameters)).body["hits"]


def shown_ids(page) -> list[int]:
    return [int(value) for value in page.locator(".hit").evaluate_all("items => items.map(item => item.dataset.id)")]


def test_the_examples_and_the_title_come_from_the_collection(recipes: RunningServer, page) -> None:
    info = recipes.request("/info").body
    assert info["name"] == "recipes" and "path" not in info
    assert info["examples"] and set(info["examples"]) <= set(RECIPE_TEXTS)
    page.goto(recipes.url)
    sync_api.expect(page.locator(".example")).to_have_text(info["examples"])
    sync_api.expect(page).to_have_title("recipes · semsearch")
    sync_api.expect(page.locator("h1")).to_have_text("recipes")
    sync_api.expect(page.locator("#about")).to_contain_text("25 documents, searched by meaning")
    page_text = page.locator("body").inner_text()
    assert not any(example in page_text for example in ABC_EXAMPLES)
    page.locator(".example").first.click()
    sync_api.expect(page.locator("#query")).to_have_value(info["examples"][0])
    expected = api_hits(recipes, "/search", q=info["examples"][0], k=10)
    sync_api.expect(page.locator(".hit .text")).to_have_text([hit["text"] for hit in expected])


def test_a_collection_without_examples_shows_none(tmp_path: Path, real_encoder, page) -> None:
    """A collection built before the build kept examples: none are shown, least of all the ABC ones."""
    import json

    path = build_recipes(tmp_path / "old.semsearch", real_encoder)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["examples"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    running = start_server(path, tmp_path / "server.log")
    try:
        assert running.request("/info").body["examples"] == []
        page.goto(running.url)
        sync_api.expect(page.locator("#about")).to_contain_text("25 documents")
        sync_api.expect(page).to_have_title("old · semsearch")
        sync_api.expect(page.locator(".example")).to_have_count(0)
        sync_api.expect(page.locator("#examples")).to_be_hidden()
        assert not any(example in page.locator("body").inner_text() for example in ABC_EXAMPLES)
    finally:
        stop_server(running)


def test_the_captions_say_what_the_mode_ranks_by(recipes: RunningServer, page) -> None:
    page.goto(recipes.url)
    page.locator("#query").fill("tomato soup with garlic")
    sync_api.expect(page.locator(".hit")).to_have_count(10)
    caption, about = page.locator("#caption"), page.locator("#about")
    sync_api.expect(caption).to_contain_text("cosine similarity")
    sync_api.expect(about).to_contain_text("by meaning")
    semantic = caption.inner_text()
    assert "cosine similarity" in page.locator(".hit .score").first.get_attribute("title")

    page.locator("#mode").select_option("keyword")
    keyword = api_hits(recipes, "/search", q="tomato soup with garlic", k=10, mode="keyword")
    sync_api.expect(page.locator(".hit .text")).to_have_text([hit["text"] for hit in keyword])
    sync_api.expect(caption).to_contain_text("BM25")
    assert caption.inner_text() != semantic and "meaning" not in caption.inner_text()
    sync_api.expect(about).not_to_contain_text("meaning")
    assert "BM25" in page.locator(".hit .score").first.get_attribute("title")

    page.locator("#mode").select_option("hybrid")
    sync_api.expect(caption).to_contain_text("fused rank score")
    sync_api.expect(about).to_contain_text("by meaning and by words")
    hybrid = api_hits(recipes, "/search", q="tomato soup with garlic", k=10, mode="hybrid")
    sync_api.expect(page.locator(".hit .score")).to_have_text([f"{hit['score']:.4f}" for hit in hybrid])


@pytest.mark.parametrize("mode", ["semantic", "keyword"])
def test_more_results_appends_the_next_page(recipes: RunningServer, page, mode: str) -> None:
    query = "dinner with tomato and cheese" if mode == "semantic" else "with"  # 25 documents; "with" is in 19 of them
    pages = [api_hits(recipes, "/search", q=query, k=10, mode=mode, offset=offset) for offset in (0, 10, 20)]
    expected = [hit["id"] for hits in pages for hit in hits]
    assert len(pages[0]) == 10 and 0 < len(pages[1] + pages[2]) < 20 and len(set(expected)) == len(expected)
    page.goto(recipes.url + "/?" + urllib.parse.urlencode({"q": query, "mode": mode}))
    sync_api.expect(page.locator(".hit")).to_have_count(10)
    more = page.locator("#more")
    for shown in (20, len(expected)) if len(pages[1]) == 10 else (len(expected),):
        sync_api.expect(more).to_be_visible()
        more.click()
        sync_api.expect(page.locator(".hit")).to_have_count(shown)
        assert shown_ids(page) == expected[:shown]  # what was shown as it was, then the next page
    sync_api.expect(more).to_be_hidden()  # a short page was the last
    sync_api.expect(page.locator("#status")).to_contain_text(f"{len(expected)} results, best first; that is all")
    assert "offset" not in page.url  # the address is the search, not how far down it was read


def test_metadata_is_shown_as_text(recipes: RunningServer, page) -> None:
    import json

    page.goto(recipes.url)
    page.locator("#query").fill("shakshuka eggs in tomato sauce")
    hit = page.locator(".hit", has_text="Shakshuka")
    sync_api.expect(hit).to_be_visible()
    found = api_hits(recipes, "/search", q="shakshuka eggs in tomato sauce", k=10)
    meta = next(hit for hit in found if hit["text"].startswith("Shakshuka"))["meta"]
    shown = [value if isinstance(value, str) else json.dumps(value, separators=(",", ":")) for value in meta.values()]
    sync_api.expect(hit.locator(".meta li")).to_have_text([f"{key}: {value}" for key, value in zip(meta, shown, strict=True)])
    assert "tags: [\"brunch\",\"one pan\"]" in hit.inner_text() and "vegetarian: true" in hit.inner_text()

    # Markup from the collection is shown as the characters it is, and nothing in it runs.
    page.locator("#query").fill("tomato soup with basil")
    odd = page.locator(".hit", has_text="Tomato <b>soup</b>")
    sync_api.expect(odd.locator(".text")).to_have_text(RECIPES[-1][0])
    sync_api.expect(odd.locator(".meta")).to_contain_text("cuisine: <i>italian</i>")
    sync_api.expect(odd.locator(".meta")).to_contain_text("note: <script>window.pwned=2</script>")
    assert page.locator("#results b, #results i, #results img, #results script").count() == 0
    assert page.evaluate("window.pwned") is None


def test_the_keyboard_reaches_the_results_and_their_similar_texts(recipes: RunningServer, page) -> None:
    page.goto(recipes.url)
    query = page.locator("#query")
    query.fill("italian pasta")
    hits = page.locator(".hit")
    sync_api.expect(hits).to_have_count(10)
    searched = [hit["text"] for hit in api_hits(recipes, "/search", q="italian pasta", k=10)]
    query.press("ArrowDown")
    sync_api.expect(hits.nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    sync_api.expect(hits.nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    sync_api.expect(hits.nth(0)).to_be_focused()
    first_id = shown_ids(page)[0]

    page.keyboard.press("Enter")
    like = api_hits(recipes, f"/similar/{first_id}", k=10)
    sync_api.expect(page.locator("#results-title")).to_have_text(f"like: {searched[0]}")
    sync_api.expect(page.locator(".hit .text")).to_have_text([hit["text"] for hit in like])
    assert first_id not in shown_ids(page) and searched[0] not in page.locator("#results").inner_text()
    sync_api.expect(page.locator("#caption")).to_contain_text("cosine similarity")
    sync_api.expect(hits.nth(0)).to_be_focused()
    sync_api.expect(page.locator("#more")).to_be_visible()
    page.locator("#more").click()  # /similar pages too (by asking for more)
    sync_api.expect(hits).to_have_count(20)
    assert shown_ids(page) == [hit["id"] for hit in api_hits(recipes, f"/similar/{first_id}", k=20)]

    page.locator("#back").click()  # back to the query's results, as they were
    sync_api.expect(page.locator(".hit .text")).to_have_text(searched)
    sync_api.expect(page.locator("#results-title")).to_be_hidden()
    sync_api.expect(hits.nth(0)).to_be_focused()
    sync_api.expect(query).to_have_value("italian pasta")

    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")  # the second hit's similar texts, then Esc goes back
    sync_api.expect(page.locator("#results-title")).to_have_text(f"like: {searched[1]}")
    page.keyboard.press("Escape")
    sync_api.expect(page.locator(".hit .text")).to_have_text(searched)
    sync_api.expect(hits.nth(1)).to_be_focused()
