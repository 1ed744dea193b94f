"""What a live update costs (issue 6), and what a filtered search costs.

``Collection.add``, ``upsert`` and ``remove`` (and ``semsearch add`` and ``remove``, which call
them) write a new ``generation-N/`` holding a changed copy of the whole collection. This builds
the bundled sample (21,293 headlines) and a 100,000-headline collection once each, with the
default encoder and backend, then times every update on a fresh copy of one of them, the median
of three runs, split into the stages ``UpdateStats.seconds`` reports. The tables go into
BENCHMARKS.md between the markers of their own section, the rest of the file as it is.

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/updates.py

New headlines come from ``../shared/tools/make_headlines.py`` (synthetic, which is fine for
timings), or from ``--headlines``, a TSV of them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from semsearch import Collection, Document, read_corpus
from semsearch.sources.datasets import bundled_path
from semsearch.encoders import Encoder
from semsearch.cpus import available_cpus
from semsearch.filters import Filter
from semsearch.bench.relevance import read_queries
from semsearch.writing.update import UpdateStats

from hybrid import ROOT, write_section  # noqa: E402  (the sibling script: one way to write BENCHMARKS.md)

START, END = "<!-- updates:begin -->", "<!-- updates:end -->"
RESULTS = ROOT / "benchmarks" / "results" / "updates.json"
MAKE_HEADLINES = ROOT.parent / "shared" / "tools" / "make_headlines.py"
RUNS = 3
ADD_SIZES = (1, 100, 1_000, 10_000)
REMOVE_SIZES = (1, 1_000)
UPSERT_SIZE = 100
COMMAND_ADD_SIZE = 100
# Stages shown as columns, in the order an update meets them after its checks. The checks, deleting
# the old generation and whatever lies outside the stages (the lock, re-opening) make up "rest".
# (Format 2: an update writes a new segment and deletion records, see writing/update.py.)
COLUMNS = ("embed", "store and index", "deletions", "sync and switch")


@dataclass
class Measured:
    """One kind of update: its runs' total seconds, and the stages of the run with the median total."""

    label: str
    collection: str
    documents: int
    megabytes: float
    totals: list[float]
    stages: dict[str, float]
    runs: list[dict[str, float]]

    @property
    def total(self) -> float:
        return statistics.median(self.totals)

    @property
    def rest(self) -> float:
        return self.total - sum(self.stages.get(name, 0.0) for name in COLUMNS)


class NewHeadlines:
    """Headlines in no collection, each handed out once, so that no run embeds a text seen before."""

    def __init__(self, path: Path) -> None:
        self._rows = [(document.text, document.date) for document in read_corpus(path)]
        self._next = 0

    def take(self, count: int, first_id: int) -> list[Document]:
        rows = self._rows[self._next : self._next + count]
        if len(rows) < count:
            raise SystemExit(f"not enough new headlines: {count} wanted, {len(rows)} left")
        self._next += count
        return [Document(id=first_id + offset, text=text, date=date) for offset, (text, date) in enumerate(rows)]

    def write(self, count: int, path: Path) -> Path:
        """``count`` of them as a TSV without ids, as a user hands a file to ``semsearch add``."""
        lines = ["publish_date\theadline_text"]
        lines += [f"{document.date:%Y%m%d}\t{document.text}" for document in self.take(count, 0)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def needed_headlines() -> int:
    return RUNS * (sum(ADD_SIZES) + UPSERT_SIZE + 100 + COMMAND_ADD_SIZE)


def make_headlines(count: int, path: Path) -> Path:
    """Synthetic headlines from the team's generator, with a seed of our own: new texts, not the sample's."""
    with path.open("w", encoding="utf-8") as stream:
        sample = ROOT.parent / "shared" / "data" / "abcnews-date-text.sample.csv"
        subprocess.run([sys.executable, str(MAKE_HEADLINES), str(sample), str(count), "--seed", "6"], check=True, stdout=stream)
    return path


def collection_size(path: Path) -> tuple[int, float]:
    """Documents and megabytes, as the manifest records them."""
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    return int(manifest["count"]), sum(entry["size"] for entry in manifest["files"].values()) / 1e6


def fresh_copy(base: Path, scratch: Path, encoder: Encoder) -> Path:
    """A copy of ``base``, opened once so that its checksums are remembered, as a built collection's are."""
    copy = scratch / f"copy-{base.name}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(base, copy)
    Collection.open(copy, encoder=encoder).close()
    return copy


def measure(label: str, base: Path, scratch: Path, encoder: Encoder, update: Callable[[Collection], UpdateStats]) -> Measured:
    """``update`` on a fresh copy of ``base``, RUNS times, with the encoder loaded already, as in a running program."""
    runs: list[tuple[float, dict[str, float]]] = []
    for _ in range(RUNS):
        copy = fresh_copy(base, scratch, encoder)
        with Collection.open(copy, encoder=encoder, verify=False) as collection:
            started = time.perf_counter()
            stats = update(collection)
            runs.append((time.perf_counter() - started, stats.seconds))
        shutil.rmtree(copy)
    runs.sort(key=lambda run: run[0])
    documents, megabytes = collection_size(base)
    print(f"{label} on {base.name}: {', '.join(f'{seconds:.2f}' for seconds, _ in runs)} s", file=sys.stderr)
    return Measured(label, base.name, documents, megabytes, [seconds for seconds, _ in runs], runs[len(runs) // 2][1], [stages for _, stages in runs])


def measure_command(label: str, base: Path, scratch: Path, encoder: Encoder, arguments: Callable[[Path], list[str]]) -> Measured:
    """A ``semsearch`` command on a fresh copy, RUNS times: a new process, which loads the encoder itself."""
    totals = []
    for _ in range(RUNS):
        copy = fresh_copy(base, scratch, encoder)
        command = [sys.executable, "-c", "from semsearch.cli import main; main()", *arguments(copy)]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        totals.append(time.perf_counter() - started)
        shutil.rmtree(copy)
    totals.sort()
    documents, megabytes = collection_size(base)
    print(f"{label} on {base.name}: {', '.join(f'{seconds:.2f}' for seconds in totals)} s", file=sys.stderr)
    return Measured(label, base.name, documents, megabytes, totals, {}, [])


def update_rows(sample: Path, large: Path, scratch: Path, encoder: Encoder, headlines: NewHeadlines) -> list[Measured]:
    def adding(count: int) -> Callable[[Collection], UpdateStats]:
        return lambda collection: collection.add(headlines.take(count, collection.store.max_id() + 1))

    def removing(count: int) -> Callable[[Collection], UpdateStats]:
        return lambda collection: collection.remove(range(count))

    def upserting(count: int) -> Callable[[Collection], UpdateStats]:
        return lambda collection: collection.upsert(headlines.take(count, 0))  # ids 0 to count - 1 exist: new texts replace theirs

    def command_add(copy: Path) -> list[str]:
        return ["add", str(copy), str(headlines.write(COMMAND_ADD_SIZE, scratch / "add.tsv")), "--quiet"]

    rows = [measure(f"add {count:,}", sample, scratch, encoder, adding(count)) for count in ADD_SIZES]
    rows += [measure(f"remove {count:,}", sample, scratch, encoder, removing(count)) for count in REMOVE_SIZES]
    rows.append(measure(f"upsert {UPSERT_SIZE:,}, every id already there", sample, scratch, encoder, upserting(UPSERT_SIZE)))
    rows.append(measure("add 100", large, scratch, encoder, adding(100)))
    rows.append(measure("remove 1", large, scratch, encoder, removing(1)))
    rows.append(measure_command(f"`semsearch add` of {COMMAND_ADD_SIZE} (a new process)", sample, scratch, encoder, command_add))
    rows.append(measure_command("`semsearch remove` of 1 (a new process)", sample, scratch, encoder, lambda copy: ["remove", str(copy), "--id", "7"]))
    return rows


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


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


def update_table(rows: list[Measured]) -> list[str]:
    header = "| update | collection | median s | " + " | ".join(COLUMNS) + " | rest | the 3 runs, s |"
    lines = [header, "| --- | --- |" + " ---: |" * (len(COLUMNS) + 3)]
    for row in rows:
        stages = [f"{row.stages[name]:.2f}" if name in row.stages else "-" for name in COLUMNS]
        rest = f"{row.rest:.2f}" if row.stages else "-"
        collection = f"{row.documents:,} ({row.megabytes:.0f} MB)"
        runs = ", ".join(f"{seconds:.2f}" for seconds in row.totals)
        lines.append(f"| {row.label} | {collection} | {row.total:.2f} | " + " | ".join(stages) + f" | {rest} | {runs} |")
    return lines


def reading(rows: list[Measured], builds: dict[str, float]) -> str:
    """What the table says, in words, from its own numbers."""
    find = {(row.label, row.collection): row for row in rows}
    add1, add100, add1000, add10000 = (find[(f"add {count:,}", "sample")] for count in ADD_SIZES)
    remove1, large_add100, large_remove1 = find[("remove 1", "sample")], find[("add 100", "large")], find[("remove 1", "large")]
    command = next(row for row in rows if row.label.startswith("`semsearch add`"))
    small, large = remove1.documents, large_remove1.documents
    grows = ("load index", "save index", "sync and switch")
    per_change = (add10000.stages["embed"] + add10000.stages["store"] + add10000.stages["index"]) / 10_000
    return (
        f"Reading: an update rewrites the whole collection, so even the smallest one costs what rewriting the collection "
        f"costs: removing one headline took {remove1.total:.2f} s from the {small:,} of the sample and "
        f"{large_remove1.total:.2f} s from {large:,} ({large_remove1.total / remove1.total:.1f}x the time for "
        f"{large / small:.1f}x the headlines). The same add of 100 took {add100.total:.2f} s on the sample and "
        f"{large_add100.total:.2f} s on {large:,} headlines, though it embedded the same number of texts "
        f"({add100.stages['embed']:.2f} s against {large_add100.stages['embed']:.2f} s): what grew is loading the whole "
        f"index, saving it, and fsyncing and hashing the new files ({sum(add100.stages[name] for name in grows):.2f} s against "
        f"{sum(large_add100.stages[name] for name in grows):.2f} s). Copying documents.sqlite is cheap here because the file "
        f"is in the page cache; from a cold disk it costs a read and a write of the file. What grows with the change is "
        f"embedding (on one core: updates embed serially) and adding to the index (HNSW insertion, on every core): "
        f"{add10000.stages['embed']:.1f} s and {add10000.stages['index']:.1f} s of the {add10000.total:.1f} s for 10,000, "
        f"about {1000 * per_change:.2f} ms a headline with the SQLite rows. So gather changes into one update: one add of "
        f"1,000 took {add1000.total:.2f} s, "
        f"where 1,000 adds of one would take about {1000 * add1.total:.0f} s. For comparison, building from nothing with "
        f"every core took {builds['sample']:.0f} s for the sample and {builds['large']:.0f} s for {large:,} headlines. "
        f"`semsearch add` took {command.total - add100.total:.1f} s more than the library's add of 100: starting Python, "
        f"importing, loading the encoder."
    )


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "")
    return f"{platform.machine()} ({model}), {available_cpus()} CPUs, Linux {platform.release()}, Python {platform.python_version()}"


def revision() -> str:
    """The commit measured, marked -dirty when the working tree had changes."""
    result = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def command() -> str:
    """This run's command line as typed from the repository's root, PYTHONPATH included when set."""
    python = os.path.relpath(sys.executable, ROOT) if Path(sys.executable).is_relative_to(ROOT) else sys.executable
    pythonpath = f"env PYTHONPATH={os.environ['PYTHONPATH']} " if os.environ.get("PYTHONPATH") else ""
    return f"flock /tmp/semsearch-heavy.lock {pythonpath}{python} {' '.join(['benchmarks/updates.py', *sys.argv[1:]])}"


def markdown(rows: list[Measured], searches: list[tuple[str, int, float]], builds: dict[str, float], context: dict[str, str]) -> str:
    large = next(row.documents for row in rows if row.collection == "large")
    lines = [
        START,
        "## Live updates: add, upsert, remove (issue 6)",
        "",
        f"Every update writes a new `generation-N/` holding a changed copy of the whole collection (documents.sqlite "
        f"copied, the index loaded into memory, changed and saved, the new files fsynced and hashed into the manifest), "
        f"then switches manifest.json to it. Collections: the bundled sample and {large:,} headlines of "
        f"`{context['large']}`, each built once with the default encoder (use-multilingual) and backend "
        f"(usearch); every run starts from a fresh copy whose checksums are known, as after a build. New headlines are "
        f"synthetic (`shared/tools/make_headlines.py --seed 6`), none embedded twice. Library rows time the call on an open "
        f"collection with the encoder loaded, as in a running program; the `semsearch` rows time the whole command. "
        f"Median of {RUNS} runs, in seconds; the stages are those of the median run (`UpdateStats.seconds`): *embed* the "
        f"new texts (reading included), *store* the SQLite changes, *index* the index's adds and removals, *copy store* "
        f"documents.sqlite, *load index* and *save index* the whole index, *sync and switch* fsync and sha256 of the new "
        f"files and the manifest; *rest* is the checks, deleting the old generation and re-opening the collection.",
        "",
        *update_table(rows),
        "",
        reading(rows, builds),
        "",
        "Filtered search on the sample (k=10, one query at a time, the hand-made queries of `tests/data/queries.jsonl`):",
        "",
        "| search | documents matching | median ms |",
        "| --- | ---: | ---: |",
        *[f"| {label} | {matching:,} | {milliseconds:.1f} |" for label, matching, milliseconds in searches],
        "",
        f"Machine: {context['machine']}; load average {context['load']} (1 min, at the start and the end). "
        f"Run {context['date']} at commit {context['revision']}; every run's stages are in `benchmarks/results/updates.json`. "
        f"Command, from the repository's root: `{context['command']}`.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=Path, default=Path("/work/cache/headlines-100k.tsv"), help="the larger corpus to build")
    parser.add_argument("--headlines", type=Path, help="a TSV of new headlines [default: made with shared/tools/make_headlines.py]")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    arguments = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="semsearch-updates-") as directory:
        scratch = Path(directory)
        os.environ["SEMSEARCH_CACHE_DIR"] = str(scratch / "cache")  # remembered checksums: ours, not the user's
        headlines = NewHeadlines(arguments.headlines or make_headlines(needed_headlines(), scratch / "headlines.tsv"))
        builds = {}
        started = time.perf_counter()
        with Collection.build(bundled_path("abcnews-sample"), scratch / "sample", progress=True) as built:
            encoder = built.encoder
        builds["sample"] = time.perf_counter() - started
        encoder.encode(["load the model before any timing"])
        started = time.perf_counter()
        Collection.build(arguments.large, scratch / "large", encoder=encoder, progress=True).close()
        builds["large"] = time.perf_counter() - started
        rows = update_rows(scratch / "sample", scratch / "large", scratch, encoder, headlines)
        with Collection.open(scratch / "sample", encoder=encoder) as collection:
            searches = search_rows(collection)
    context = {
        "machine": machine(),
        "load": f"{load_before:.1f}, {os.getloadavg()[0]:.1f}",
        "date": datetime.date.today().isoformat(),
        "revision": revision(),
        "command": command(),
        "large": str(arguments.large),
    }
    RESULTS.write_text(json.dumps({**context, "builds": builds, "updates": [vars(row) for row in rows]}, indent=1) + "\n", encoding="utf-8")
    section = markdown(rows, searches, builds, context)
    write_section(arguments.output, section, START, END)
    print(section)


if __name__ == "__main__":
    main()
