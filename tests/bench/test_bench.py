"""semsearch bench on a small real corpus with the fake encoder, and the report it feeds."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from semsearch.bench.embedding_cache import cached_embeddings, read_rows
from semsearch.bench.grids import Setting, select_settings
from semsearch.bench.run import run_benchmark
from semsearch.bench.truth import hold_out
from semsearch.errors import SemsearchError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, sample_csv: Path) -> tuple[Path, list[dict]]:
    from tests.conftest import FakeEncoder

    directory = tmp_path_factory.mktemp("bench")
    grid = [
        Setting("exact", "exact"),
        Setting("usearch f16", "usearch", {"connectivity": 16, "expansion_add": 64}, None, [{"expansion_search": 8}, {"expansion_search": 128}]),
        Setting("tutorial", "annoy", {"n_trees": 10}, "random-projection:16"),
        Setting("broken", "faiss", {"index": "IVF4096,Flat"}),  # too few vectors to train: reported, not fatal
    ]
    rows = run_benchmark(sample_csv, FakeEncoder(), grid, cache_dir=directory / "cache", results_path=directory / "results" / "sample.json",
                         queries=50, limit=1000, progress=False, log=lambda line: None)
    return directory, rows


def test_every_setting_and_sweep_point_is_a_row(results: tuple[Path, list[dict]]) -> None:
    _, rows = results
    assert [(row["label"], row["search_params"]) for row in rows] == [
        ("exact (ground truth, batched, all cores)", {}),
        ("exact", {}),
        ("usearch f16", {"expansion_search": 8}),
        ("usearch f16", {"expansion_search": 128}),
        ("tutorial", {}),
        ("broken", {}),
    ]
    assert all(row["documents"] == 950 and row["queries"] == 50 for row in rows)


def test_recall_is_against_exact_search(results: tuple[Path, list[dict]]) -> None:
    _, rows = results
    by_key = {(row["label"], json.dumps(row["search_params"])): row for row in rows}
    assert by_key[("exact", "{}")]["recall"] == 1.0
    wide = by_key[("usearch f16", '{"expansion_search": 128}')]
    narrow = by_key[("usearch f16", '{"expansion_search": 8}')]
    assert wide["recall"] >= 0.8  # the fake encoder ties many scores, which caps recall
    assert narrow["recall"] <= wide["recall"]
    assert by_key[("tutorial", "{}")]["recall"] < 0.9  # 64 -> 16 random dimensions loses neighbours


def test_rows_carry_the_measurements(results: tuple[Path, list[dict]]) -> None:
    _, rows = results
    usearch = next(row for row in rows if row["label"] == "usearch f16")
    for key in ("qps", "batch_qps", "p50_ms", "p99_ms", "build_seconds", "open_seconds", "size_bytes", "peak_memory_bytes"):
        assert usearch[key] > 0, key
    assert usearch["p99_ms"] >= usearch["p50_ms"]
    tutorial = next(row for row in rows if row["label"] == "tutorial")
    # Annoy keeps no full vectors and a reducer is used: the size counts vectors.npy (950 x 64 float16) too.
    assert tutorial["size_bytes"] > 950 * 64 * 2


def test_a_failing_setting_is_reported_with_its_error(results: tuple[Path, list[dict]]) -> None:
    _, rows = results
    broken = next(row for row in rows if row["label"] == "broken")
    assert "cannot be trained on 950 vectors" in broken["error"]


def test_results_are_written_as_json_and_csv(results: tuple[Path, list[dict]]) -> None:
    directory, rows = results
    saved = json.loads((directory / "results" / "sample.json").read_text())
    assert saved["rows"] == rows
    assert saved["machine"]["cores"] >= 1 and saved["machine"]["versions"]["usearch"]
    with (directory / "results" / "sample.csv").open() as stream:
        assert len(list(csv.DictReader(stream))) == len(rows)


def test_report_writes_tables_and_a_plot(results: tuple[Path, list[dict]], tmp_path: Path) -> None:
    directory, _ = results
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    output = tmp_path / "BENCHMARKS.md"
    assert report.main(directory / "results", output, tmp_path) == 0
    text = output.read_text()
    usearch_lines = [line for line in text.splitlines() if line.startswith("| usearch f16 |")]
    assert len(usearch_lines) == 2 and all("connectivity=16" in line for line in usearch_lines)
    assert "failed: " in text
    assert (tmp_path / "sample-recall-qps.png").stat().st_size > 10_000
    assert "![recall against QPS, sample](sample-recall-qps.png)" in text
    assert "### The defaults, and why" in text
    assert text.startswith("# Benchmarks") and "<!-- ann:begin -->" in text and text.rstrip().endswith("<!-- ann:end -->")


def test_embeddings_are_cached_and_queries_held_out(results: tuple[Path, list[dict]], sample_csv: Path) -> None:
    from tests.conftest import FakeEncoder

    directory, _ = results
    cache = directory / "cache"
    before = sorted(path.name for path in cache.iterdir())
    embeddings = cached_embeddings(sample_csv, FakeEncoder(), cache, limit=1000)
    assert sorted(path.name for path in cache.iterdir()) == before  # nothing computed again
    split = hold_out(embeddings, cache, 50)
    assert len(split.query_rows) == 50
    assert not np.isin(embeddings.ids[split.query_rows], split.truth).any()  # a query is never its own answer
    np.testing.assert_array_equal(read_rows(embeddings.vectors_path, 3, 5), np.load(embeddings.vectors_path)[3:5].astype(np.float32))


def test_select_settings() -> None:
    assert [setting.label for setting in select_settings("sample", ("tutorial",))] == ["tutorial: random-projection:64 + annoy 100 trees"]
    with pytest.raises(SemsearchError, match="neither a grid"):
        select_settings("nonsense")
    with pytest.raises(SemsearchError, match="no setting of the grid has a label starting with 'zzz'"):
        select_settings("sample", ("zzz",))
