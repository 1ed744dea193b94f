"""A served collection whose files vanish or are damaged answers 503, /health says so, and both recover once it is
whole again (issue 14); /health and /info look for an update themselves, without waiting for a search (issue 15)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from semsearch import Collection, Document
from semsearch.errors import CollectionError
from semsearch.search.query import SearchRequest
from semsearch.server import batching
from semsearch.server.batching import CollectionDamaged, SearchBatcher
from semsearch.server.launch import Answer, RunningServer, start_server, stop_server


def eventually(check: Callable[[], Answer], wanted: Callable[[Answer], bool], seconds: float = 15.0) -> Answer:
    """Ask again (the server looks at most once a second) until the answer is the one wanted, or the time is up."""
    deadline = time.monotonic() + seconds
    while not wanted(answer := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer


def is_damaged(answer: Answer) -> bool:
    return answer.status == 503


def is_ok(answer: Answer) -> bool:
    return answer.status == 200


@pytest.fixture
def running(tiny_collection_path: Path, tmp_path: Path):
    server = start_server(tiny_collection_path, tmp_path / "server.log")
    yield server
    stop_server(server)


def assert_damaged(server: RunningServer, collection_path: Path, says: str) -> None:
    health = eventually(lambda: server.request("/health"), is_damaged)
    assert health.status == 503 and health.body["status"] == "damaged", health.body
    message = health.body["message"]
    assert message.startswith("the collection cannot be searched now: ") and says in message and "\n" not in message
    assert collection_path.name in message and str(collection_path.parent) not in message  # no path of the server's
    search = server.request("/search?q=flood&k=2")
    assert search.status == 503 and search.body["message"] == message
    batch = server.post_json("/search", {"queries": ["flood", "rain"], "k": 2})
    assert batch.status == 503 and batch.body["message"] == message


def assert_whole_again(server: RunningServer, documents: int) -> None:
    assert eventually(lambda: server.request("/health"), is_ok).body == {"status": "ok", "documents": documents}
    assert len(server.request("/search?q=flood&k=2").body["hits"]) == 2
    log = server.log_text()
    assert "Traceback" not in log and "the collection can be searched again" in log


def test_a_collection_whose_files_vanish_answers_503_until_they_are_back(running: RunningServer, tiny_collection_path: Path) -> None:
    assert running.request("/health").body == {"status": "ok", "documents": 20}
    manifest = tiny_collection_path / "manifest.json"
    aside = tiny_collection_path.parent / "manifest.aside"
    manifest.rename(aside)
    try:
        assert_damaged(running, tiny_collection_path, "not a semsearch collection (no manifest.json)")
    finally:
        aside.rename(manifest)
    assert_whole_again(running, 20)


def test_a_damaged_update_answers_503_until_a_good_one(running: RunningServer, tiny_collection_path: Path) -> None:
    manifest = tiny_collection_path / "manifest.json"
    good = manifest.read_text()
    damaged = json.loads(good)
    damaged["updated"] = "2030-01-01T00:00:00+00:00"
    # As if the new index were cut short (the count is left alone: format 2 checks it against the segments first).
    damaged["files"]["index.usearch"]["size"] += 1
    write_atomically(manifest, json.dumps(damaged))
    assert_damaged(running, tiny_collection_path, "the manifest says")
    write_atomically(manifest, good)  # the collection as it was: the one the server has open
    assert_whole_again(running, 20)
    with Collection.open(tiny_collection_path) as collection:  # and a real update after that is picked up
        collection.add([Document(id=5000, text="koalas rescued from bushfire")])
    assert eventually(lambda: running.request("/health"), lambda answer: answer.body.get("documents") == 21).body["documents"] == 21


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".test-tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_health_and_info_show_an_update_without_a_search(running: RunningServer, tiny_collection_path: Path) -> None:
    assert running.request("/health").body["documents"] == 20
    with Collection.open(tiny_collection_path) as collection:
        collection.add([Document(id=5000, text="koalas rescued from bushfire")])
    # No search is sent: /health and /info must look for the update themselves (at most once a second).
    assert eventually(lambda: running.request("/health"), lambda answer: answer.body["documents"] == 21).body["documents"] == 21
    with Collection.open(tiny_collection_path) as collection:
        collection.remove([5000, 0])
    assert eventually(lambda: running.request("/info"), lambda answer: answer.body["count"] == 19).body["count"] == 19
    assert "Traceback" not in running.log_text()


class VanishingFiles:
    """A real collection whose next search fails as one does when its files were deleted under it."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.fail_next = False

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.collection, name)

    def __len__(self) -> int:
        return len(self.collection)

    def search_request(self, queries: list[str], request: SearchRequest):  # noqa: ANN201
        if self.fail_next:
            self.fail_next = False
            raise CollectionError(f"{self.collection.path}: documents.sqlite is missing")
        return self.collection.search_request(queries, request)


def test_a_search_that_finds_files_missing_marks_the_collection_damaged_until_a_check_finds_it_whole(
        fake_encoder, tmp_path: Path, sample_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = Collection.build(sample_csv, tmp_path / "news.semsearch", encoder=fake_encoder, backend="exact", limit=50)
    vanishing = VanishingFiles(built)
    batcher = SearchBatcher(vanishing)  # type: ignore[arg-type]

    async def run() -> tuple[str, str | None, int]:
        await batcher.start()
        try:
            vanishing.fail_next = True
            with pytest.raises(CollectionDamaged) as failed:
                await batcher.search(["flood"], SearchRequest.of(3))
            with pytest.raises(CollectionDamaged):  # not searched while damaged, whatever is asked
                await batcher.search(["rain"], SearchRequest.of(2))
            monkeypatch.setattr(batching, "REFRESH_SECONDS", 0.0)
            await batcher.check_for_update()  # the manifest is the open one, and its files are whole: searched again
            cleared = batcher.damage
            hits = await batcher.search(["rain"], SearchRequest.of(2))
            return str(failed.value), cleared, len(hits[0])
        finally:
            await batcher.stop()
            batcher.collection.close()

    message, cleared, found = asyncio.run(run())
    assert message == "the collection cannot be searched now: news.semsearch: documents.sqlite is missing; searches resume once it is whole again"
    assert cleared is None and found == 2
    built.close()
