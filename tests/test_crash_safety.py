"""Crash safety, for real: builds and updates killed with SIGKILL at random moments, and readers during an update.

After every kill the collection must open (checksums verified) and hold exactly the old or
the new contents, with an index that agrees with its document store. The work runs in
children of tests/crash_worker.py, which keeps the real encoder loaded between trials.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from semsearch import Collection
from semsearch.writing.checkpoint import workspace_path
from tests.conftest import SAMPLE_CSV

KILLS = 20




def wait_for(path: Path, limit: float) -> None:
    start = time.perf_counter()
    while not path.exists() and time.perf_counter() - start < limit:
        time.sleep(0.002)


def calibrate(worker: Worker, finished_file: Path, **request: object) -> tuple[float, float]:
    """Run the work to the end once: (seconds in all, seconds from the new index file's appearance to the end).
    The second is the finishing stretch (fsync, checksums, manifest, rename, clean-up) where the switch happens."""
    start = time.perf_counter()
    worker.start(**request)
    wait_for(finished_file, 300)
    seen = time.perf_counter()
    assert worker.collect() == 0
    end = time.perf_counter()
    return end - start, max(end - seen, 0.005)


def wait_then_kill(pid: int, chooser: random.Random, timing: tuple[float, float], trial: int, finished_file: Path) -> float:
    """Kill ``pid`` at a random moment: even trials anywhere in the run, odd ones within the finishing
    stretch, after the new index file is written. Returns the seconds waited."""
    duration, finishing = timing
    start = time.perf_counter()
    if trial % 2 == 0:
        time.sleep(chooser.uniform(0, duration * 1.1))
    else:
        wait_for(finished_file, duration * 3)
        time.sleep(chooser.uniform(0, finishing * 1.2))
    os.kill(pid, signal.SIGKILL)
    return time.perf_counter() - start
WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = Path(__file__).resolve().parents[1]


class Worker:
    """The test's handle on crash_worker.py: start work in a child, kill it, collect it."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert json.loads(self.process.stdout.readline()) == {"ready": True}

    def start(self, **request: object) -> int:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["pid"]

    def collect(self) -> int:
        """The child's exit code (-9 when killed); it stays a zombie until now, so killing its pid was safe."""
        self.process.stdin.write("reap\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["exit"]

    def run(self, **request: object) -> float:
        """Do the work to the end; its duration in seconds."""
        start = time.perf_counter()
        self.start(**request)
        assert self.collect() == 0
        return time.perf_counter() - start

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def worker() -> Worker:
    handle = Worker()
    yield handle
    handle.close()


def shorter(duration: float, wait: float, status: int) -> float:
    """A run that finished before its kill took less than the wait: aim the next kills within that.
    The machine is shared, so the first run's duration is only a first guess."""
    return min(duration, wait) if status == 0 else duration


def sample_texts(start: int, count: int) -> list[str]:
    with gzip.open(SAMPLE_CSV, "rt", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))[1 + start : 1 + start + count]
    return [row[1] for row in rows]


def write_jsonl(path: Path, contents: dict[int, str]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "text": text}) + "\n" for i, text in contents.items()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two corpora to build (A, B), and an update of A: upserts giving A1, then removals giving A2."""
    directory = tmp_path_factory.mktemp("corpora")
    a = dict(enumerate(sample_texts(0, 400)))
    b = {i + 10_000: text for i, text in enumerate(sample_texts(6000, 500))}
    upserts = {i: text for i, text in zip(range(0, 100), sample_texts(9000, 100))}
    upserts.update({i: text for i, text in zip(range(1000, 1300), sample_texts(12000, 300))})
    removals = list(range(200, 230))
    a1 = {**a, **upserts}
    a2 = {i: text for i, text in a1.items() if i not in removals}
    return {
        "a": a, "b": b, "a1": a1, "a2": a2, "removals": removals,
        "a_file": write_jsonl(directory / "a.jsonl", a), "b_file": write_jsonl(directory / "b.jsonl", b),
        "upsert_file": write_jsonl(directory / "upserts.jsonl", upserts),
    }


def state_of(path: Path, encoder) -> dict[int, str]:
    """The contents of the collection at ``path``, after checking that it opens and that its parts agree."""
    with Collection.open(path, verify=True, encoder=encoder) as collection:
        ids = collection.store.ids()
        contents = {document_id: document.text for document_id, document in collection.store.get(ids).items()}
        assert len(collection) == len(contents) == sum(len(s.index) - len(s.deleted) for s in collection.segments), \
            "manifest, stores and indexes agree on the count"
        chosen = ids[np.linspace(0, len(ids) - 1, 40).astype(int)]
        held = collection.vectors(chosen)
        expected = encoder.encode([contents[int(i)] for i in chosen])
        assert np.all(np.sum(held * expected, axis=1) > 0.99), "the index holds each document's own vector under its id"
    return contents


def name_of(state: dict[int, str], corpora: dict[str, object]) -> str:
    for name in ("a", "b", "a1", "a2"):
        if state == corpora[name]:
            return name
    return "a mix"


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}"))


def test_build_killed_at_random_moments(tmp_path: Path, worker: Worker, corpora: dict[str, object], real_encoder) -> None:
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)
    path = tmp_path / "news.semsearch"
    worker.run(action="build", source=str(corpora["a_file"]), path=str(path))
    duration, finishing = calibrate(worker, workspace_path(path) / "index.usearch", action="build", source=str(corpora["b_file"]), path=str(path))
    outcomes: Counter[str] = Counter()
    for trial in range(KILLS):
        before = name_of(state_of(path, real_encoder), corpora)
        target = "b" if before == "a" else "a"
        pid = worker.start(action="build", source=str(corpora[f"{target}_file"]), path=str(path))
        wait = wait_then_kill(pid, chooser, (duration, finishing), trial, workspace_path(path) / "index.usearch")
        status = worker.collect()
        duration = shorter(duration, wait, status) if trial % 2 == 0 else duration
        after = name_of(state_of(path, real_encoder), corpora)
        assert after in (before, target), f"trial {trial} (seed {seed}): {before} -> {after}"
        assert status in (0, -signal.SIGKILL)
        outcomes[f"{'killed' if status else 'finished'}, {'new' if after == target else 'old'}"] += 1
    print(f"\nbuild kills (seed {seed}, a build takes about {duration:.2f} s, {finishing:.3f} s of it finishing): {dict(outcomes)}; "
          f"leftovers: {len(leftovers(path))}")
    assert sum(count for outcome, count in outcomes.items() if outcome.startswith("killed")) >= KILLS // 4


def test_update_killed_at_random_moments(tmp_path: Path, worker: Worker, corpora: dict[str, object], real_encoder) -> None:
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)
    pristine, path = tmp_path / "pristine.semsearch", tmp_path / "news.semsearch"
    worker.run(action="build", source=str(corpora["a_file"]), path=str(pristine))
    shutil.copytree(pristine, path)
    update = {"action": "upsert", "source": str(corpora["upsert_file"]), "path": str(path), "remove": corpora["removals"]}
    duration, finishing = calibrate(worker, path / "segment-1" / "index.exact", **update)
    assert name_of(state_of(path, real_encoder), corpora) == "a2"
    outcomes: Counter[str] = Counter()
    for trial in range(KILLS):
        if name_of(state_of(path, real_encoder), corpora) != "a":
            shutil.rmtree(path)
            shutil.copytree(pristine, path)
        pid = worker.start(**update)
        generation = json.loads((path / "manifest.json").read_text()).get("generation", 0) + 1
        wait = wait_then_kill(pid, chooser, (duration, finishing), trial, path / f"segment-{generation}" / "index.exact")
        status = worker.collect()
        duration = shorter(duration, wait, status) if trial % 2 == 0 else duration
        after = name_of(state_of(path, real_encoder), corpora)
        # The request is two updates (upsert, then remove): a kill between them leaves A1, the
        # upserts done and the removals not, a whole state of its own, never a mix.
        assert after in ("a", "a1", "a2"), f"trial {trial} (seed {seed}): a -> {after}"
        assert status in (0, -signal.SIGKILL)
        outcomes[f"{'killed' if status else 'finished'}, {after}"] += 1
    generations = sorted(p.name for p in path.iterdir() if p.name.startswith(("segment-", "deleted-")))
    print(f"\nupdate kills (seed {seed}, an update takes about {duration:.2f} s, {finishing:.3f} s of it finishing): {dict(outcomes)}; "
          f"generation directories: {generations}")
    assert sum(count for outcome, count in outcomes.items() if outcome.startswith("killed")) >= KILLS // 4
    worker.run(**update)
    named = {name.split("/", 1)[0] for name in json.loads((path / "manifest.json").read_text())["files"]}
    left = {p.name for p in path.iterdir() if p.name.startswith(("segment-", "deleted-", "generation-"))}
    assert left <= named, f"a finished update deletes what killed ones left: {sorted(left - named)}"


def test_compaction_killed_at_random_moments(tmp_path: Path, worker: Worker, corpora: dict[str, object], real_encoder) -> None:
    """A collection of three segments and deletions (A, then the upserts and removals: A2), compacted and
    killed: it always holds A2, as three segments or as one, and a finished compaction leaves one."""
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)
    pristine, path = tmp_path / "pristine.semsearch", tmp_path / "news.semsearch"
    worker.run(action="build", source=str(corpora["a_file"]), path=str(pristine))
    worker.run(action="upsert", source=str(corpora["upsert_file"]), path=str(pristine), remove=corpora["removals"])
    assert name_of(state_of(pristine, real_encoder), corpora) == "a2"
    shutil.copytree(pristine, path)
    generation = json.loads((path / "manifest.json").read_text())["generation"] + 1
    marker = path / f"segment-{generation}" / "index.exact"  # a merged segment of under 5,000 documents is exact
    duration, finishing = calibrate(worker, marker, action="compact", path=str(path))
    outcomes: Counter[str] = Counter()
    for trial in range(KILLS):
        shutil.rmtree(path)
        shutil.copytree(pristine, path)
        pid = worker.start(action="compact", path=str(path))
        wait = wait_then_kill(pid, chooser, (duration, finishing), trial, marker)
        status = worker.collect()
        duration = shorter(duration, wait, status) if trial % 2 == 0 else duration
        after = name_of(state_of(path, real_encoder), corpora)
        assert after == "a2", f"trial {trial} (seed {seed}): a2 -> {after}"
        assert status in (0, -signal.SIGKILL)
        segments = len(json.loads((path / "manifest.json").read_text())["segments"])
        outcomes[f"{'killed' if status else 'finished'}, {segments} segments"] += 1
    print(f"\ncompaction kills (seed {seed}, a compaction takes about {duration:.2f} s): {dict(outcomes)}")
    assert sum(count for outcome, count in outcomes.items() if outcome.startswith("killed")) >= KILLS // 4
    worker.run(action="compact", path=str(path))
    assert sorted(p.name for p in path.iterdir()) == [".update.lock", "manifest.json", f"segment-{generation}"]


def test_readers_during_an_update_see_the_old_or_the_new_contents(tmp_path: Path, worker: Worker, corpora: dict[str, object], real_encoder) -> None:
    path = tmp_path / "news.semsearch"
    worker.run(action="build", source=str(corpora["a_file"]), path=str(path))
    new_text = corpora["a2"][1000]
    opened_before = Collection.open(path, encoder=real_encoder)
    worker.start(action="upsert", source=str(corpora["upsert_file"]), path=str(path))
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and seen["new"] < 3:
        with Collection.open(path, encoder=real_encoder) as reader:
            contents = {i: d.text for i, d in reader.store.get(reader.store.ids()).items()}
            state = "old" if contents == corpora["a"] else "new" if contents == corpora["a1"] else "a mix"
            top = reader.search(new_text, k=1)[0]
            assert (top.id == 1000) == (state == "new"), "search sees the state the reader opened"
        seen[state] += 1
        assert opened_before.search(new_text, k=1)[0].id != 1000, "a reader opened before the update keeps the old state"
    assert worker.collect() == 0
    print(f"\nreader opens during an update: {dict(seen)}")
    assert set(seen) <= {"old", "new"} and seen["old"] >= 1 and seen["new"] >= 1
    assert opened_before.refresh() and opened_before.search(new_text, k=1)[0].id == 1000
    opened_before.close()
