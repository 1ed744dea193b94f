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
