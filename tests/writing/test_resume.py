"""Interrupted builds: a killed `semsearch build` subprocess resumes from its last completed batch
and ends up equal to a build that was never interrupted; SIGTERM stops cleanly."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from semsearch import Collection
from semsearch.backends import backend_class, create_index
from semsearch.writing.checkpoint import BuildWorkspace, IndexSnapshots, VectorCheckpoint, workspace_path
from semsearch.errors import CollectionError

BATCH = 250
# Enough that a build is still embedding well after the signal is sent, at 4,000 texts/s.
LIMIT = 16_000
# As in a terminal: a process started in the background by a shell without job control (CI's
# `make test &`, nohup) inherits SIGINT ignored, and Python then never turns Ctrl-C into KeyboardInterrupt.
AS_IN_A_TERMINAL = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
QUERIES = ["bushfire threatens homes", "election campaign", "cricket world cup", "drought hits farmers", "iraq war protest"]


def build_command(source: Path, target: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-c", AS_IN_A_TERMINAL + "from semsearch.cli import main; main()", "build", str(source), "-o", str(target),
        "--backend", "exact", "--limit", str(LIMIT), "--batch-size", str(BATCH), "--quiet", *extra,
    ]


def stored_documents(target: Path) -> int:
    """Documents committed so far by a running build, read as another process would."""
    database = workspace_path(target) / "documents.sqlite"
    if not database.is_file():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as connection:
            return connection.execute("SELECT count(*) FROM documents").fetchone()[0]
    except sqlite3.OperationalError:  # schema not written yet
        return 0


def start_and_stop(command: list[str], target: Path, at_least: int, how: signal.Signals) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while stored_documents(target) < at_least:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the build never got going"
        time.sleep(0.05)
    process.send_signal(how)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def assert_same_collection(first: Collection, second: Collection) -> None:
    assert len(first) == len(second) == LIMIT
    ids = np.arange(LIMIT)
    assert first.store.get(ids) == second.store.get(ids)
    np.testing.assert_allclose(first.index.vectors(ids), second.index.vectors(ids), atol=1e-6)
    for query in QUERIES:
        assert [(hit.id, round(hit.score, 5)) for hit in first.search(query, k=10)] == [
            (hit.id, round(hit.score, 5)) for hit in second.search(query, k=10)
        ]


@pytest.fixture(scope="module")
def reference(sample_csv: Path, real_encoder, tmp_path_factory: pytest.TempPathFactory) -> Collection:
    """The uninterrupted build that every interrupted one must end up equal to."""
    path = tmp_path_factory.mktemp("reference") / "reference.semsearch"
    return Collection.build(sample_csv, path, encoder=real_encoder, backend="exact", limit=LIMIT, batch_size=BATCH)


@pytest.mark.slow
def test_a_killed_build_resumes_from_its_last_batch_and_equals_an_uninterrupted_one(sample_csv: Path, reference: Collection, tmp_path: Path) -> None:
    target = tmp_path / "news.semsearch"
    killed = start_and_stop(build_command(sample_csv, target), target, 1000, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not target.exists()
    committed = stored_documents(target)
    assert committed >= 1000 and committed % BATCH == 0 and committed < LIMIT

    resumed = subprocess.run(build_command(sample_csv, target, "--resume"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed after {committed:,} documents" in resumed.stderr
    assert not workspace_path(target).exists()
    with Collection.open(target) as collection:
        assert_same_collection(reference, collection)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_cleanly_keeps_whole_batches_and_the_old_collection(
    sample_csv: Path, reference: Collection, tmp_path: Path, how: signal.Signals
) -> None:
    target = tmp_path / "news.semsearch"
    old = subprocess.run(build_command(sample_csv, target, "--limit", "300"), capture_output=True, text=True, timeout=300)
    assert old.returncode == 0, old.stderr
    stopped = start_and_stop(build_command(sample_csv, target), target, 500, how)
    assert stopped.returncode == 130, stopped.stderr
    assert "interrupted:" in stopped.stderr and "--resume" in stopped.stderr and "Traceback" not in stopped.stderr
    with Collection.open(target) as collection:  # the last good collection, as it was
        assert len(collection) == 300
    stored = stored_documents(target)
    assert stored % BATCH == 0
    checkpoint = VectorCheckpoint(workspace_path(target) / "checkpoint.vectors", 512)
    assert checkpoint.rows >= stored
    checkpoint.close()
    # Stopped while embedding: the index is filled only after, from the checkpoint, so there is no snapshot yet.
    assert not (workspace_path(target) / "index-snapshot").exists()

    resumed = subprocess.run(build_command(sample_csv, target, "--resume"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    with Collection.open(target) as collection:
        assert sorted(collection.info()["files"]) == ["documents.sqlite", "index.exact", "index.exact.ids"]
        assert_same_collection(reference, collection)


def test_index_snapshots_skip_torn_and_too_new_ones(tmp_path: Path) -> None:
    index = create_index("exact", 4)
    snapshots = IndexSnapshots(tmp_path, index, every_seconds=0)
    vectors = np.eye(4, dtype=np.float32)
    index.add(np.array([1, 2]), vectors[:2])
    snapshots.save(index, 2)
    index.add(np.array([3]), vectors[2:3])
    snapshots.save(index, 3)
    (tmp_path / "index-snapshot.new").mkdir()  # torn: cut off before its rows.json
    restored, rows = IndexSnapshots(tmp_path, create_index("exact", 4), every_seconds=0).restore(create_index("exact", 4), committed=3)
    assert rows == 3 and len(restored) == 3
    np.testing.assert_array_equal(restored.vectors(np.array([3])), vectors[2:3])
    empty, rows = IndexSnapshots(tmp_path, create_index("exact", 4), every_seconds=0).restore(create_index("exact", 4), committed=2)
    assert rows == 0 and len(empty) == 0  # the store holds fewer documents than the snapshot: refill from zero


def test_checkpoint_drops_vectors_of_an_uncommitted_batch(tmp_path: Path) -> None:
    checkpoint = VectorCheckpoint(tmp_path / "checkpoint.vectors", 4)
    vectors = np.arange(24, dtype=np.float32).reshape(6, 4)
    checkpoint.append(np.array([10, 11, 12]), vectors[:3])
    checkpoint.append(np.array([13, 14, 15]), vectors[3:])
    checkpoint.close()
    reopened = VectorCheckpoint(tmp_path / "checkpoint.vectors", 4)
    assert reopened.rows == 6
    reopened.truncate(3)
    ids, read = reopened.read(0, 3)
    assert ids.tolist() == [10, 11, 12]
    np.testing.assert_array_equal(read, vectors[:3])
    with pytest.raises(CollectionError, match="holds 3 vectors for 5 stored documents"):
        reopened.truncate(5)
    reopened.close()


HOLD_WORKSPACE = """
import sys
from pathlib import Path
from semsearch.writing.checkpoint import BuildWorkspace
workspace = BuildWorkspace(Path(sys.argv[1]), {"encoder": {"name": "use-multilingual"}}).open(resume=False)
print("holding", flush=True)
sys.stdin.read()
"""


def test_a_second_build_into_the_same_path_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    target = tmp_path / "news.semsearch"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WORKSPACE, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        for resume in (False, True):
            with pytest.raises(CollectionError, match="another build is writing it"):
                BuildWorkspace(target, {"encoder": {"name": "use-multilingual"}}).open(resume=resume)
    finally:
        holder.communicate(input="", timeout=30)
    assert BuildWorkspace(target, {"encoder": {"name": "use-multilingual"}}).open(resume=True).resumed


def test_resume_refuses_a_different_build(tmp_path: Path) -> None:
    target = tmp_path / "news.semsearch"
    BuildWorkspace(target, {"encoder": {"name": "use-multilingual"}, "source": "a.csv"}).open(resume=False).release()
    with pytest.raises(CollectionError, match="differs in encoder; run the same command as before"):
        BuildWorkspace(target, {"encoder": {"name": "fake-hash"}, "source": "a.csv"}).open(resume=True)
    again = BuildWorkspace(target, {"encoder": {"name": "use-multilingual"}, "source": "a.csv"}).open(resume=True)
    assert again.resumed
    again.release()


class InterruptedIndex:
    """An exact index that is interrupted (as by Ctrl-C) on its ``at``-th add, the way a signal arrives mid-build."""

    def __init__(self, at: int) -> None:
        self.inner = create_index("exact", 64)
        self.adds = 0
        self.at = at

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def __len__(self) -> int:
        return len(self.inner)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.adds += 1
        if self.adds == self.at:
            raise KeyboardInterrupt
        self.inner.add(ids, vectors)


def test_an_interrupt_while_indexing_keeps_the_index_so_far_and_resume_goes_on_from_it(
    sample_csv: Path, fake_encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semsearch import building
    from semsearch.writing.build import CorpusSource, build_plan, write_collection_files
    from semsearch.sources.corpus import read_corpus
    from semsearch.errors import BuildInterrupted

    monkeypatch.setattr(building, "INDEX_SLICE", 300)
    target = tmp_path / "news.semsearch"

    def source() -> CorpusSource:
        return CorpusSource(read_corpus(sample_csv, limit=1000), fake_encoder, batch_size=BATCH, parallel="serial")

    interrupted = InterruptedIndex(at=3)  # after two slices, 600 vectors
    plan = build_plan(source(), fake_encoder, interrupted.inner)
    workspace = BuildWorkspace(target, plan).open(resume=False)
    with pytest.raises(BuildInterrupted, match="1,000 documents are saved"):
        write_collection_files(workspace, source(), interrupted, 64, batch_size=BATCH, progress=False)
    workspace.release()
    assert json.loads((workspace_path(target) / "index-snapshot" / "rows.json").read_text()) == {"rows": 600}

    resumed = InterruptedIndex(at=0)
    workspace = BuildWorkspace(target, plan).open(resume=True)
    assert write_collection_files(workspace, source(), resumed, 64, batch_size=BATCH, progress=False) == 1000
    workspace.release()
    assert resumed.adds == 0  # the snapshot's index was loaded and filled instead of this one
    index = backend_class("exact").load(workspace.path, 64, {}, mmap=False)
    texts = [document.text for document in read_corpus(sample_csv, limit=1000)]
    np.testing.assert_allclose(index.vectors(np.arange(1000)), fake_encoder.encode(texts), atol=1e-6)
