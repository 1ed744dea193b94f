"""What an update and a filtered search cost, on a copy of the bundled sample (21,293 headlines).

Times ``semsearch add`` of new headlines, an upsert, a removal and a rebuild through the library,
and the median latency of searches with and without filters, then writes a table into
BENCHMARKS.md between the markers of its own section.

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/updates.py
"""

from __future__ import annotations

import datetime
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from semsearch import Collection, Document
from semsearch.encoders.use import available_cpus
from semsearch.filters import Filter
from semsearch.relevance import read_queries

from hybrid import ROOT, sample_arguments, write_section  # noqa: E402  (the sibling script: one way to write BENCHMARKS.md)

START, END = "<!-- updates:start -->", "<!-- updates:end -->"
COMMAND = "flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/updates.py"
CHANGED = 100


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def update_rows(collection: Collection) -> list[tuple[str, float]]:
    """Seconds for each kind of update of CHANGED documents."""
    texts = [document.text for document in collection.store.get(range(CHANGED)).values()]
    first_new = collection.store.max_id() + 1
    new = [Document(id=first_new + i, text=f"{text} (again)", date=datetime.date(2003, 6, 3)) for i, text in enumerate(texts)]
    replacing = [Document(id=i, text=f"{text} (corrected)") for i, text in enumerate(texts)]
    return [
        (f"add {CHANGED} new documents", timed(lambda: collection.add(new))),
        (f"upsert {CHANGED} documents (replace their text)", timed(lambda: collection.upsert(replacing))),
        (f"remove {CHANGED} documents", timed(lambda: collection.remove(range(CHANGED)))),
        (f"remove {CHANGED} documents with --rebuild", timed(lambda: collection.remove(range(CHANGED, 2 * CHANGED), rebuild=True))),
        ("open, checksums verified", timed(lambda: Collection.open(collection.path, encoder=collection.encoder).close())),
        ("open, sizes only (verify=False)", timed(lambda: Collection.open(collection.path, encoder=collection.encoder, verify=False).close())),
    ]


def search_rows(collection: Collection) -> list[tuple[str, int, float]]:
    """(search, matching documents, median milliseconds over the hand-made queries)."""
    queries = [query.text for query in read_queries(ROOT / "tests" / "data" / "queries.jsonl")]
    one_day = {"date_from": "2003-04-10", "date_to": "2003-04-10"}
    one_month = {"date_from": "2003-04-01", "date_to": "2003-04-30"}
    cases = [
        ("semantic", {}, None),
        ("semantic, one day (about 1%)", one_day, Filter.of(**one_day)),
        ("semantic, one month (about 30%)", one_month, Filter.of(**one_month)),
        ("keyword", {"mode": "keyword"}, None),
        ("hybrid", {"mode": "hybrid"}, None),
        ("hybrid, one day", {"mode": "hybrid", **one_day}, Filter.of(**one_day)),
    ]
    rows = []
    collection.search(queries[0], k=10)  # load the model first
    for label, options, wanted in cases:
        times = [timed(lambda: collection.search(query, k=10, **options)) for query in queries]
        matching = collection.store.count_matching(wanted) if wanted else len(collection)
        rows.append((label, matching, 1000 * statistics.median(times)))
    return rows


def markdown(collection: Collection, updates: list[tuple[str, float]], searches: list[tuple[str, int, float]]) -> str:
    lines = [
        START,
        "## Updates and filtered search (issue 6)",
        "",
        f"A copy of the bundled sample ({len(collection):,} headlines, use-multilingual, usearch). An update writes a new "
        "generation (a copy of documents.sqlite and of the index, changed) and switches the manifest, so its cost grows "
        "with the collection, not only with the change; the time includes embedding the new texts.",
        "",
        "| update | seconds |",
        "| --- | ---: |",
        *[f"| {label} | {seconds:.2f} |" for label, seconds in updates],
        "",
        "| search (k=10, one query at a time) | documents matching | median ms |",
        "| --- | ---: | ---: |",
        *[f"| {label} | {matching:,} | {milliseconds:.1f} |" for label, matching, milliseconds in searches],
        "",
        f"Machine: {platform.machine()}, {available_cpus()} CPUs, Python {platform.python_version()}. Command: `{COMMAND}`.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    arguments = sample_arguments(__doc__.splitlines()[0])
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "sample.semsearch"
        shutil.copytree(arguments.collection, copy)
        with Collection.open(copy) as collection:
            collection.search("warm up", k=1)
            searches = search_rows(collection)
            updates = update_rows(collection)
            section = markdown(collection, updates, searches)
    write_section(arguments.output, section, START, END)
    print(section)


if __name__ == "__main__":
    main()
