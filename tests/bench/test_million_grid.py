"""Issue 12's settings measured by semsearch bench on a small corpus: re-ranked quantised graphs, ScaNN, and the command itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch.bench.grids import GRIDS, Setting
from semsearch.bench.run import run_benchmark


def test_the_million_grid_names_every_candidate_of_issue_12() -> None:
    labels = [setting.label for setting in GRIDS["million"]]
    for wanted in ("default: usearch f16", "usearch bf16", "usearch i8 c16 ea128, f16 rerank", "hnswlib", "faiss HNSW16,SQ8",
                   "faiss HNSW32,SQ8 efc40", "faiss HNSW32,SQ8 efc200", "scann"):
        assert any(label.startswith(wanted) for label in labels), wanted
    faiss = next(setting for setting in GRIDS["million"] if setting.label.startswith("faiss HNSW32,SQ8 efc40"))
    assert {point["rerank"] for point in faiss.sweep} == {0, 50, 100}


def test_reranked_settings_are_measured_with_their_vectors(tmp_path: Path, sample_csv: Path) -> None:
    pytest.importorskip("faiss")
    from tests.conftest import FakeEncoder

    grid = [
        Setting("faiss HNSW8,SQ8", "faiss", {"index": "HNSW8,SQ8", "efConstruction": 40, "train_size": 500}, None,
                [{"efSearch": 64, "rerank": 0}, {"efSearch": 64, "rerank": 50}]),
        Setting("usearch i8, rerank", "usearch", {"dtype": "i8"}, None, [{"expansion_search": 64, "rerank": 50}]),
    ]
    rows = run_benchmark(sample_csv, FakeEncoder(), grid, cache_dir=tmp_path / "cache", results_path=tmp_path / "r.json",
                         queries=50, limit=1000, progress=False, log=lambda line: None)
    measured = {(row["label"], json.dumps(row.get("search_params"))): row for row in rows[1:]}
    assert not [row for row in measured.values() if "error" in row]
    plain = measured[("faiss HNSW8,SQ8", '{"efSearch": 64, "rerank": 0}')]
    reranked = measured[("faiss HNSW8,SQ8", '{"efSearch": 64, "rerank": 50}')]
    assert reranked["recall"] >= plain["recall"] - 0.02
    # vectors.npy (950 x 64 float16) is counted in the size of a setting that re-ranks on it
    assert measured[("usearch i8, rerank", '{"expansion_search": 64, "rerank": 50}')]["size_bytes"] > 950 * 64 * 2


def test_scann_is_measured_through_its_own_files(tmp_path: Path, sample_csv: Path) -> None:
    from semsearch.backends.scann import _scann
    from semsearch.errors import MissingExtraError
    from tests.conftest import FakeEncoder

    try:
        _scann()  # not importorskip: `import scann` fails beside another TensorFlow than its own, which the backend avoids
    except MissingExtraError:
        pytest.skip("scann is not installed")

    grid = [Setting("scann", "scann", {"leaves": 10, "soar_lambda": 1.5, "reorder": 50, "training_sample_size": 1000}, None,
                    [{"leaves_to_search": 2}, {"leaves_to_search": 10}])]
    rows = run_benchmark(sample_csv, FakeEncoder(), grid, cache_dir=tmp_path / "cache", results_path=tmp_path / "r.json",
                         queries=50, limit=1000, progress=False, log=lambda line: None)
    narrow, wide = rows[1:]
    assert "error" not in narrow, narrow
    assert wide["recall"] >= narrow["recall"] and wide["recall"] >= 0.6
    assert wide["size_bytes"] > 0


def test_the_bench_command_runs(tmp_path: Path, sample_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semsearch.cli import cli
    from tests.conftest import FakeEncoder

    monkeypatch.setattr("semsearch.cli.tools.get_encoder", lambda spec: FakeEncoder())
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps([{"label": "exact", "backend": "exact"}]))
    result = CliRunner().invoke(cli, ["bench", str(sample_csv), "--grid", str(grid), "--queries", "20", "--limit", "300",
                                      "--cache-dir", str(tmp_path / "cache"), "--results", str(tmp_path / "out.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out.json").read_text())["rows"][1]["recall"] == 1.0


def test_the_frontier_report_writes_its_section_and_two_plots(tmp_path: Path) -> None:
    import importlib.util

    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("frontier", Path(__file__).resolve().parents[2] / "benchmarks" / "frontier.py")
    frontier = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(frontier)
    row = {"label": "a", "backend": "faiss", "build_params": {}, "documents": 990, "queries": 10, "recall": 0.96, "qps": 2500.0,
           "cpu_qps": 2600.0, "p50_ms": 0.3, "p99_ms": 0.9, "build_seconds": 100.0, "build_cpu_seconds": 190.0, "load_average": 1.0,
           "open_seconds": 0.01, "first_open_seconds": 2.0, "size_bytes": 1.7e9, "peak_memory_bytes": 2**31}
    rows = [row | {"search_params": {"efSearch": 64}}, row | {"search_params": {"efSearch": 32}, "recall": 0.9, "qps": 4000.0},
            {"label": "b", "backend": "scann", "build_params": {}, "search_params": {}, "error": "boom"}]
    machine = {"cpu": "x", "cores": 2, "memory_gb": 1, "python": "3", "versions": {}, "date": "d", "command": "-c bench c"}
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"machine": machine, "rows": rows}))
    output = tmp_path / "B.md"
    output.write_text("# Benchmarks\n")
    assert frontier.main(results, output, tmp_path) == 0
    text = output.read_text()
    assert "| a | efSearch=64 | 0.960 | 2,500 |" in text and "| met | met | **missed** | met | met |" in text
    assert "2,000 / 10" in text and "Failed: b: boom" in text and "`semsearch bench c`" in text
    assert (tmp_path / "headlines-1m-frontier-qps.png").stat().st_size and (tmp_path / "headlines-1m-frontier-build.png").stat().st_size
