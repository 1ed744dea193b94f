"""Make docs/screenshot.png: the search page with results, in real headless Chromium.

    .venv/bin/python docs/screenshot.py        # serves sample.semsearch (built if missing)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from semsearch.server.launch import CHROMIUM, CHROMIUM_ARGS, sample_collection, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
QUERY = "bushfire recovery in canberra"


def main(output: Path = ROOT / "docs" / "screenshot.png") -> None:
    collection = sample_collection(ROOT / "sample.semsearch")
    server = start_server(collection, Path(tempfile.mkdtemp(prefix="semsearch-screenshot-")) / "server.log")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 900, "height": 720}, color_scheme="light")
            page.goto(server.url)
            page.locator("#query").press_sequentially(QUERY, delay=20)
            expect(page.locator(".hit")).to_have_count(10)
            expect(page.locator("#about")).to_contain_text("documents")
            page.screenshot(path=str(output), full_page=True)
            browser.close()
    finally:
        stop_server(server)
    print(f"wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
