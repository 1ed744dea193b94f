"""Issue 12's candidates: faiss HNSW over scalar codes, re-ranking on the stored float16 vectors, ScaNN kept to the bench.

A crafted index.faiss of the new kind (IndexHNSWSQ) is one error line, never a crash: every
mutated file is loaded and searched in one fresh process, so a check that let one through
shows as that process dying.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semsearch.backends import BACKENDS, bench_only_class, create_index
from semsearch.backends.factory import open_index
from semsearch.errors import CollectionError
from semsearch.storage.layout import DOCUMENTS_FILE, VECTORS_FILE, index_entries
from semsearch.storage.vector_file import VectorFileWriter

pytest.importorskip("faiss")

DIM = 16


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(12)
    data = generator.normal(size=(600, DIM)).astype(np.float32)
    return np.arange(600, dtype=np.int64) * 3 + 5, data / np.linalg.norm(data, axis=1, keepdims=True)


def collection_files(directory: Path, backend: str, params: dict[str, Any], vectors: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """The index and vectors.npy a collection keeps, and the manifest entries open_index reads."""
    index = create_index(backend, DIM, dict(params))
    index.threads = 1
    index.add(*vectors)
    index.save(directory)
    writer = VectorFileWriter(directory / VECTORS_FILE, DIM)
    writer.append(vectors[1], vectors[0])
    writer.close()
    files = {name: {} for name in [DOCUMENTS_FILE, *(entry.name for entry in directory.iterdir())]}
    return {"encoder": {"dim": DIM}, **index_entries(index), "count": len(vectors[0]), "files": files}


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(row) & set(best)) / truth.shape[1] for row, best in zip(found, truth)]))


@pytest.mark.parametrize("spec", ["HNSW8,SQ8", "HNSW8,SQ4", "HNSW8,SQfp16"])
def test_faiss_hnsw_over_scalar_codes_opens_and_reranks_on_the_stored_vectors(tmp_path: Path, spec: str,
                                                                               vectors: tuple[np.ndarray, np.ndarray]) -> None:
    ids, data = vectors
    manifest = collection_files(tmp_path, "faiss", {"index": spec, "efConstruction": 60, "train_size": 300}, vectors)
    assert manifest["backend"]["params"]["efConstruction"] == 60
    index = open_index(tmp_path, manifest)
    truth = ids[np.argsort(-(data[:40] @ data.T), axis=1)[:, :10]]
    found, scores = index.search(data[:40], 10, efSearch=64, rerank=60)
    assert recall(found, truth) >= 0.95
    # re-ranked scores are exact cosines on the float16 vectors: each query finds itself at about 1
    assert np.allclose(scores[:, 0], 1.0, atol=2e-3) and (found[:, 0] == ids[:40]).all()
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    plain, _ = index.search(data[:40], 10, efSearch=64)
    assert plain.shape == (40, 10)


def test_rerank_without_the_vectors_is_one_line(vectors: tuple[np.ndarray, np.ndarray]) -> None:
    index = create_index("faiss", DIM, {"index": "HNSW8,SQ8", "train_size": 300})
    index.add(*vectors)
    with pytest.raises(ValueError, match="re-ranking needs the collection's full vectors"):
        index.search(vectors[1][:2], 5, rerank=20)


def test_ef_construction_is_for_hnsw_only() -> None:
    with pytest.raises(Exception, match="efConstruction"):
        create_index("faiss", DIM, {"index": "IVF4,Flat", "efConstruction": 40})


def test_usearch_reranks_on_a_vectors_file_beside_it(tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray]) -> None:
    import semsearch.backends.usearch as usearch_backend

    ids, data = vectors
    manifest = collection_files(tmp_path, "usearch", {"dtype": "i8"}, vectors)
    index = open_index(tmp_path, manifest)
    original, usearch_backend.EXACT_SEARCH_LIMIT = usearch_backend.EXACT_SEARCH_LIMIT, 0  # the graph, not brute force
    try:
        found, scores = index.search(data[:20], 10, rerank=50)
    finally:
        usearch_backend.EXACT_SEARCH_LIMIT = original
    assert (found[:, 0] == ids[:20]).all() and np.allclose(scores[:, 0], 1.0, atol=2e-3)


def test_scann_is_for_the_bench_only() -> None:
    assert "scann" not in BACKENDS
    cls = bench_only_class("scann")
    assert cls is not None and bench_only_class("usearch") is None
    with pytest.raises(CollectionError, match="for semsearch bench only"):
        cls.load(Path("/nonexistent"), DIM, {})


def mutations(data: bytes, count: int, seed: int) -> list[tuple[str, bytes]]:
    """Single bytes changed at random offsets (more of them in the header and the graph), and truncations."""
    generator = np.random.default_rng(seed)
    cases = []
    for offset in sorted(set(generator.integers(0, min(len(data), 4096), count // 2).tolist()
                             + generator.integers(0, len(data), count // 2).tolist())):
        changed = bytearray(data)
        changed[offset] = (changed[offset] + int(generator.integers(1, 256))) % 256
        cases.append((f"byte {offset}", bytes(changed)))
    for cut in (0, 4, 40, 200, len(data) // 2, len(data) - 9, len(data) - 1):
        cases.append((f"cut at {cut}", data[:cut]))
    cases.append(("one byte more", data + b"\0"))
    return cases


def test_crafted_faiss_hnsw_sq_files_are_one_line_never_a_crash(tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray]) -> None:
    source = tmp_path / "source"
    source.mkdir()
    manifest = collection_files(source, "faiss", {"index": "HNSW8,SQ8", "train_size": 300}, vectors)
    data = (source / "index.faiss").read_bytes()
    cases = mutations(data, 300, seed=12)
    for number, (_, content) in enumerate(cases):
        case = tmp_path / f"case-{number}"
        shutil.copytree(source, case)
        (case / "index.faiss").write_bytes(content)
    code = (
        "import json, sys, numpy as np\n"
        "from pathlib import Path\n"
        "from semsearch.backends.factory import open_index\n"
        "from semsearch.errors import SemsearchError\n"
        "root, manifest, count = Path(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])\n"
        "for number in range(count):\n"
        "    print(number, end=' ', flush=True)\n"
        "    try:\n"
        "        index = open_index(root / f'case-{number}', manifest)\n"
        f"        index.search(np.ones((2, {DIM}), dtype=np.float32) / 4, 5, rerank=20)\n"
        "        print('ok', flush=True)\n"
        "    except (SemsearchError, ValueError) as error:\n"
        "        assert '\\n' not in str(error)\n"
        "        print(type(error).__name__, flush=True)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path), json.dumps(manifest), str(len(cases))], capture_output=True,
                            text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "SEMSEARCH_CACHE_DIR": str(tmp_path / ".cache"),
                                                         "PATH": "/usr/bin:/bin"})
    lines = result.stdout.strip().splitlines()
    died = cases[len(lines) - 1][0] if lines else "the first case"
    assert result.returncode == 0, f"the load died ({result.returncode}) on {died}: {result.stderr[-1500:]}"
    outcomes = [line.split(" ", 1)[1] for line in lines]
    assert len(outcomes) == len(cases)
    # Most changes are caught; some (a code byte, an unused field) are harmless and search fine.
    assert outcomes.count("IndexFileError") + outcomes.count("CollectionError") > len(cases) // 4
