"""``semsearch encoders``, ``datasets``, ``download`` and ``bench``: what is installed, data sets, measurements."""

from __future__ import annotations

import json
from pathlib import Path

import click

from semsearch.cli.group import cli
from semsearch.encoders import DEFAULT_ENCODER, get_encoder, list_encoders
from semsearch.sources.datasets import DATASETS, download, resolve_source


@cli.command(name="encoders")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per encoder.")
def encoders_command(as_json: bool) -> None:
    """The text encoders semsearch knows, their dimensions and whether each is installed.

    Choose one with `semsearch build ... --encoder NAME[:ARGUMENT]`; searching a collection
    always uses the encoder that built it.

    \b
      semsearch build abcnews-sample -o news.semsearch --encoder sentence-transformers:all-MiniLM-L6-v2
    """
    rows = list_encoders()
    if as_json:
        for row in rows:
            click.echo(json.dumps({"name": row.name, "usage": row.usage, "dim": row.dim, "installed": row.installed,
                                   "default": row.name == DEFAULT_ENCODER, "extra": row.extra, "summary": row.summary,
                                   "problem": row.problem}, ensure_ascii=False))
        return
    width = max(len(row.usage) for row in rows) if rows else 0
    click.echo(f"{'ENCODER':{width}}  {'DIM':>9}  INSTALLED")
    for row in rows:
        dim = str(row.dim) if row.dim else "per model"
        installed = "yes" if row.installed else "no"
        default = " (default)" if row.name == DEFAULT_ENCODER else ""
        click.echo(f"{row.usage:{width}}  {dim:>9}  {installed:9}  {row.summary}{default}")
        if row.problem:
            click.echo(f"{'':{width}}  {'':>9}  {'':9}  {row.problem}")

@cli.command()
def datasets() -> None:
    """The data sets semsearch knows: bundled ones build offline, others need `semsearch download`."""
    for dataset in DATASETS.values():
        click.echo(f"{dataset.name:16} {dataset.location:9} {dataset.licence:8} {dataset.description}")

@cli.command(name="download")
@click.argument("name", type=click.Choice([d.name for d in DATASETS.values() if d.url]))
@click.argument("destination", type=click.Path(path_type=Path))
@click.option("--url", help="Fetch from this address instead, e.g. a mirror.")
def download_command(name: str, destination: Path, url: str | None) -> None:
    """Download data set NAME to DESTINATION (a file, or a directory to put it in).

    An interrupted download resumes where it stopped when run again.

    \b
      semsearch download abcnews abcnews.tsv
      semsearch build abcnews.tsv -o news.semsearch
    """
    from tqdm import tqdm

    bars: list[tqdm] = []  # made on the first bytes, so a refused connection prints only its error

    def progress(done: int, total: int | None) -> None:
        if not bars:
            bars.append(tqdm(unit="B", unit_scale=True, desc=name, total=total, dynamic_ncols=True))
        bars[0].update(done - bars[0].n)

    try:
        path = download(name, destination, url=url, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    click.echo(f"saved {path}", err=True)

@cli.command()
@click.argument("source")
@click.option("--grid", default="sample", show_default=True, help="Settings to measure: sample, million, or a JSON file of settings.")
@click.option("--only", multiple=True, metavar="TEXT", help="Only the settings whose label starts with TEXT; repeatable.")
@click.option("--queries", type=click.IntRange(min=10), default=1000, show_default=True, help="Documents held out as queries.")
@click.option("--limit", type=click.IntRange(min=100), help="Use only the first N documents of SOURCE.")
@click.option("--encoder", default=DEFAULT_ENCODER, show_default=True, help="Text encoder, NAME or NAME:ARGUMENT.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=Path(".bench-cache"), show_default=True,
              help="Where embeddings and exact neighbours are cached, and indexes built.")
@click.option("--results", "results_path", type=click.Path(path_type=Path), help="Results file (.json, and .csv beside it) [default: benchmarks/results/CORPUS.json].")
@click.option("--build-threads", type=click.IntRange(min=1), help="Threads for building [default: every core]. Searches always use one.")
def bench(source: str, grid: str, only: tuple[str, ...], queries: int, limit: int | None, encoder: str, cache_dir: Path,
          results_path: Path | None, build_threads: int | None) -> None:
    """Measure backends and reducers on SOURCE: recall@10 against exact search, QPS, latency, build time, size, memory.

    Embeds SOURCE once (cached in --cache-dir), holds out --queries documents as queries and
    indexes the rest with every setting of the grid, each in a process of its own.

    \b
      semsearch bench abcnews-sample
      semsearch bench headlines-1m.tsv --grid million --cache-dir /work/cache/embeddings
    """
    from semsearch.bench import default_results_path, run_benchmark, select_settings

    corpus = resolve_source(source)
    settings = select_settings(grid, only)
    run_benchmark(corpus, get_encoder(encoder), settings, cache_dir=cache_dir, results_path=results_path or default_results_path(corpus),
                  queries=queries, limit=limit, build_threads=build_threads, log=lambda line: click.echo(line, err=True))
