"""Builds and updates of one path take turns: the result is that of one after the other, never a traceback."""

from __future__ import annotations

import multiprocessing
import random
import traceback
from pathlib import Path

import pytest

from semsearch import Collection, Document
from semsearch.errors import SemsearchError
from semsearch.storage.layout import update_lock
from tests.conftest import FakeEncoder

RACES = 8
ADDED = [Document(id=100_000 + i, text=f"an added headline number {i}") for i in range(3_000)]


def _add(path: str, delay: float, results) -> None:  # noqa: ANN001 - a multiprocessing queue
    import time

    time.sleep(delay)
    try:
        with Collection.open(path, encoder=FakeEncoder()) as collection:
            collection.add(ADDED, batch_size=50)
        results.put(("add", "ok"))
    except SemsearchError as error:
        results.put(("add", f"error: {error}"))
    except BaseException:  # noqa: BLE001 - what the test must never see
        results.put(("add", traceback.format_exc()))


def run_all(processes: list, results, timeout: float, where: str = "") -> dict:  # noqa: ANN001 - processes and a queue
    """Start the writers together, wait for each, and collect what each reported (name -> outcome)."""
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout)
        assert process.exitcode == 0, f"{where}a writer died with exit status {process.exitcode}"
    return dict(results.get(timeout=5) for _ in processes)


def _build(source: str, path: str, delay: float, results) -> None:  # noqa: ANN001
    import time

    time.sleep(delay)
    try:
        Collection.build(source, path, encoder=FakeEncoder(), backend="exact", limit=2_000, batch_size=200).close()
        results.put(("build", "ok"))
    except BaseException:  # noqa: BLE001
        results.put(("build", traceback.format_exc()))


def test_a_build_and_an_add_of_the_same_path_take_turns(tmp_path: Path, sample_csv: Path) -> None:
    target = tmp_path / "news.semsearch"
    Collection.build(sample_csv, target, encoder=FakeEncoder(), backend="exact", limit=1_000).close()
    built_ids = set(range(2_000))
    added_ids = {document.id for document in ADDED}
    context = multiprocessing.get_context("fork")
    rng = random.Random(14)
    for race in range(RACES):
        results = context.Queue()
        processes = [
            context.Process(target=_add, args=(str(target), 0.0, results)),
            context.Process(target=_build, args=(str(sample_csv), str(target), rng.uniform(0, 0.6), results)),
        ]
        outcomes = run_all(processes, results, 120, f"race {race}: ")
        assert outcomes["build"] == "ok", outcomes["build"]
        assert outcomes["add"] == "ok", outcomes["add"]  # it waited for the build, or the build for it
        with Collection.open(target, encoder=FakeEncoder()) as collection:
            ids = set(collection.store.ids().tolist())
        # The build last: its documents only. The add last: the build's and the added ones.
        assert ids in (built_ids, built_ids | added_ids), f"race {race}: {len(ids)} documents"
        if ids != built_ids:  # the add ran on the new collection: start the next race from the build's
            with Collection.open(target, encoder=FakeEncoder()) as collection:
                collection.remove(sorted(added_ids))


def test_a_planted_lock_link_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    collection = tmp_path / "news.semsearch"
    collection.mkdir()
    (collection / ".update.lock").symlink_to(outside)
    with pytest.raises(SemsearchError, match="symbolic link"):
        with update_lock(collection):
            pass
    assert not outside.exists()


def _add_and_remove(path: str, writer: int, results) -> None:  # noqa: ANN001 - a multiprocessing queue
    """Writer ``writer`` adds its ten documents one update at a time, then removes its first one."""
    try:
        with Collection.open(path, encoder=FakeEncoder()) as collection:
            for number in range(10):
                collection.add([Document(id=writer * 10_000 + number, text=f"writer{writer} headline{number} about rain")])
            collection.remove([writer * 10_000])
        results.put((writer, "ok"))
    except BaseException:  # noqa: BLE001 - what the test must never see
        results.put((writer, traceback.format_exc()))


def test_several_processes_adding_at_once_take_turns_and_lose_nothing(tmp_path: Path, sample_csv: Path) -> None:
    """Six processes, each ten adds and a removal, at once: 66 updates, with the merge policy's merges among them."""
    target = tmp_path / "news.semsearch"
    Collection.build(sample_csv, target, encoder=FakeEncoder(), backend="usearch", limit=300).close()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    writers = range(1, 7)
    processes = [context.Process(target=_add_and_remove, args=(str(target), writer, results)) for writer in writers]
    outcomes = run_all(processes, results, 300)
    assert all(outcome == "ok" for outcome in outcomes.values()), outcomes
    expected = set(range(300)) | {writer * 10_000 + number for writer in writers for number in range(1, 10)}
    with Collection.open(target, encoder=FakeEncoder()) as collection:
        assert set(collection.store.ids().tolist()) == expected and len(collection) == len(expected)
        assert len(collection.segments) <= 10, "the merge policy kept up"
        for writer in writers:
            assert collection.search(f"writer{writer} headline5 about rain", k=1)[0].id == writer * 10_000 + 5
