"""The settings ``semsearch bench`` measures: named grids of backends, reducers and search-time sweeps."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semsearch.errors import SemsearchError


@dataclass
class Setting:
    """One index configuration, and the search-time parameters to sweep it over (one result row each)."""

    label: str
    backend: str
    params: dict[str, Any] = field(default_factory=dict)
    reduce: str | None = None
    sweep: list[dict[str, Any]] = field(default_factory=lambda: [{}])

def _sweep(name: str, values: list[int], **fixed: Any) -> list[dict[str, Any]]:
    return [{name: value, **fixed} for value in values]


EF = [16, 24, 32, 48, 64, 96, 128]
RERANK_SWEEP = [{"expansion_search": 64, "rerank": 50}, {"expansion_search": 100, "rerank": 100}, {"expansion_search": 150, "rerank": 100},
                {"expansion_search": 200, "rerank": 200}]
# issue 12: the million grid's sweeps (recall 0.95 sits between 128 and 192 for the graphs measured before).
EF_MILLION = [64, 96, 128, 160, 192, 256]
FAISS_EF = [64, 96, 128, 192, 256, 384]
# (connectivity, efConstruction) of faiss's HNSW over SQ8 codes, in the order worth measuring: cheapest build first.
FAISS_HNSW_SQ = [(32, 40), (16, 80), (32, 80), (32, 120), (16, 200), (32, 200)]
# ScaNN with SOAR spilling: (leaves, leaves searched, quantized centroids), the two settings.
SCANN = [(2000, (15, 20, 25, 30, 35, 40, 50), True), (1050, (15, 20, 25, 30, 40), False)]


def _faiss_hnsw_sq(m: int, ef_construction: int, codes: str = "SQ8", reranks: tuple[int, ...] = (0, 50, 100)) -> Setting:
    """faiss HNSW over scalar codes; each efSearch with and without re-ranking on the stored float16 vectors."""
    return Setting(f"faiss HNSW{m},{codes} efc{ef_construction}", "faiss",
                   {"index": f"HNSW{m},{codes}", "efConstruction": ef_construction},
                   None, [{"efSearch": ef, "rerank": rerank} for rerank in reranks for ef in FAISS_EF])


def _scann(leaves: int, searched: tuple[int, ...], quantized: bool) -> Setting:
    reorder = 50 if quantized else 100
    return Setting(f"scann {leaves} leaves, AH 2, SOAR 1.5, int8 reorder {reorder}" + (", int8 centroids" if quantized else ""),
                   "scann", {"leaves": leaves, "soar_lambda": 1.5, "reorder": reorder, "quantize_centroids": quantized},
                   None, _sweep("leaves_to_search", list(searched)))


TUTORIAL = Setting("tutorial: random-projection:64 + annoy 100 trees", "annoy", {"n_trees": 100}, "random-projection:64",
                   [{}, {"search_k": 20_000}, {"search_k": 100_000}])
GRIDS: dict[str, list[Setting]] = {
    # The bundled sample, 21,293 headlines: everything, in minutes (make bench).
    "sample": [
        Setting("exact", "exact"),
        TUTORIAL,
        Setting("annoy 100 trees", "annoy", {"n_trees": 100}, None, _sweep("search_k", [-1, 5_000, 20_000, 100_000])),
        Setting("usearch f16 c16 ea128", "usearch", {"dtype": "f16", "connectivity": 16, "expansion_add": 128}, None, _sweep("expansion_search", EF)),
        Setting("usearch f16 c16 ea64", "usearch", {"dtype": "f16", "connectivity": 16, "expansion_add": 64}, None, _sweep("expansion_search", EF)),
        Setting("usearch i8 c16 ea64", "usearch", {"dtype": "i8", "connectivity": 16, "expansion_add": 64}, None, _sweep("expansion_search", EF)),
        Setting("hnswlib M16 efc100", "hnswlib", {"M": 16, "ef_construction": 100}, None, _sweep("ef", EF)),
        Setting("faiss HNSW32", "faiss", {"index": "HNSW32"}, None, _sweep("efSearch", EF)),
        Setting("faiss IVF256,Flat", "faiss", {"index": "IVF256,Flat"}, None, _sweep("nprobe", [4, 8, 16, 32, 64])),
        Setting("faiss IVF256,SQ8", "faiss", {"index": "IVF256,SQ8"}, None, _sweep("nprobe", [4, 8, 16, 32, 64])),
        Setting("faiss IVF256,PQ64", "faiss", {"index": "IVF256,PQ64"}, None, _sweep("nprobe", [8, 16, 32, 64])),
        Setting("pca:128 + usearch f16 c16 ea64, rerank", "usearch", {"dtype": "f16", "connectivity": 16, "expansion_add": 64}, "pca:128",
                RERANK_SWEEP),
        Setting("pca:128 + usearch i8 c16 ea64, rerank", "usearch", {"dtype": "i8", "connectivity": 16, "expansion_add": 64}, "pca:128",
                RERANK_SWEEP),
        Setting("pca:128 + exact, no rerank", "exact", {}, "pca:128"),
        Setting("random-projection:64 + exact", "exact", {}, "random-projection:64"),
    ],
    # 1,103,663 synthetic headlines: the candidates for the default (issue 12), the tutorial's setting and reference points.
    "million": [
        Setting("default: usearch f16 c16 ea128", "usearch", {"dtype": "f16", "connectivity": 16, "expansion_add": 128}, None,
                _sweep("expansion_search", EF_MILLION)),
        Setting("usearch bf16 c16 ea128", "usearch", {"dtype": "bf16", "connectivity": 16, "expansion_add": 128}, None,
                _sweep("expansion_search", EF_MILLION)),
        Setting("usearch i8 c16 ea128, f16 rerank", "usearch", {"dtype": "i8", "connectivity": 16, "expansion_add": 128}, None,
                [{"expansion_search": ef, "rerank": rerank} for rerank in (0, 50, 100) for ef in (64, 96, 128, 192)]),
        Setting("hnswlib M16 efc100", "hnswlib", {"M": 16, "ef_construction": 100}, None, _sweep("ef", EF_MILLION)),
        *(_faiss_hnsw_sq(m, ef_construction) for m, ef_construction in FAISS_HNSW_SQ),
        # 4-bit codes: the graph and its codes beside vectors.npy within 1.6 GB, so only ever with re-ranking.
        _faiss_hnsw_sq(32, 80, "SQ4", (50, 100)),
        *(_scann(leaves, searched, quantized) for leaves, searched, quantized in SCANN),
        Setting("pca:128 + usearch f16 c16 ea64, rerank", "usearch", {"dtype": "f16", "connectivity": 16, "expansion_add": 64}, "pca:128",
                RERANK_SWEEP),
        Setting("pca:128 + usearch i8 c16 ea64, rerank", "usearch", {"dtype": "i8", "connectivity": 16, "expansion_add": 64}, "pca:128",
                RERANK_SWEEP),
        TUTORIAL,
        Setting("faiss IVF4096,SQ8", "faiss", {"index": "IVF4096,SQ8"}, None, _sweep("nprobe", [16, 32, 64, 128])),
        Setting("usearch f16 c16 ea64", "usearch", {"dtype": "f16", "connectivity": 16, "expansion_add": 64}, None, _sweep("expansion_search", EF)),
        Setting("usearch i8 c16 ea64", "usearch", {"dtype": "i8", "connectivity": 16, "expansion_add": 64}, None, _sweep("expansion_search", EF)),
    ],
}


def select_settings(grid: str, only: tuple[str, ...] = ()) -> list[Setting]:
    """A named grid or a JSON file of settings ([{label, backend, params, reduce, sweep}]), filtered by label."""
    if grid in GRIDS:
        settings = GRIDS[grid]
    else:
        path = Path(grid)
        if not path.is_file():
            raise SemsearchError(f"--grid {grid!r}: neither a grid ({', '.join(GRIDS)}) nor a JSON file")
        try:
            settings = [Setting(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
        except (json.JSONDecodeError, TypeError) as error:
            raise SemsearchError(f"{path}: not a list of settings {{label, backend, params, reduce, sweep}}: {error}") from None
    chosen = [setting for setting in settings if not only or any(setting.label.startswith(text) for text in only)]
    if not chosen:
        raise SemsearchError(f"no setting of the grid has a label starting with {' or '.join(map(repr, only))}")
    return chosen
