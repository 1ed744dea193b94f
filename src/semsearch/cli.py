"""The semsearch command: click commands over the library, with no logic of their own."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from semsearch import __version__
from semsearch.backends import BACKENDS, DEFAULT_BACKEND
from semsearch.collection import Collection, resolve_source
from semsearch.corpus import FORMATS
from semsearch.datasets import DATASETS, download
from semsearch.documents import Hit
from semsearch.embedding import DEFAULT_BATCH_SIZE, PARALLEL_MODES
from semsearch.encoders import DEFAULT_ENCODER, format_spec, get_encoder, list_encoders
from semsearch.errors import BuildInterrupted, SemsearchError
from semsearch.filters import Filter, parse_where
from semsearch.retrieval import MODES
from semsearch.updates import UpdateStats


class SemsearchGroup(click.Group):
    """Turns a user's mistake into one line on stderr and exit status 1, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SemsearchError as error:
            raise click.ClickException(str(error)) from None
        except BuildInterrupted as interrupted:
            click.echo(f"interrupted: {interrupted}", err=True)
            ctx.exit(130)


def parse_params(values: tuple[str, ...]) -> dict[str, Any]:
    """``--param key=value`` pairs; numbers become numbers."""
    params: dict[str, Any] = {}
    for value in values:
        key, separator, raw = value.partition("=")
        if not separator or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--param")
        for convert in (int, float):
            try:
                params[key] = convert(raw)
                break
            except ValueError:
                continue
        else:
            params[key] = raw
    return params


@click.group(cls=SemsearchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="semsearch")
def cli() -> None:
    """Semantic search over a corpus of short texts.

    \b
      semsearch build abcnews-sample -o news.semsearch
      semsearch search news.semsearch "confronting global challenges"
    """


@cli.command()
@click.argument("source", required=False)
@click.option("--from-embeddings", "embeddings", metavar="PATTERN",
              help="Build from vectors embedded elsewhere, e.g. 'PREFIX*.parquet' from beam-embed, instead of SOURCE.")
@click.option("-o", "--output", "path", required=True, type=click.Path(path_type=Path), help="Collection directory to write.")
@click.option("--backend", type=click.Choice(sorted(BACKENDS)), default=DEFAULT_BACKEND, show_default=True, help="Nearest neighbour index.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Backend parameter, e.g. connectivity=32; repeatable.")
@click.option("--reduce", "reduce_to", metavar="KIND:DIM", help="Reduce vectors before indexing: pca:128, or random-projection:64 (the tutorial's).")
@click.option("--encoder", default=DEFAULT_ENCODER, show_default=True, help="Text encoder, NAME or NAME:ARGUMENT (see `semsearch encoders`).")
@click.option("--limit", type=click.IntRange(min=1), help="Index only the first N documents.")
@click.option("--format", "corpus_format", type=click.Choice(sorted(set(FORMATS.values()))), help="Corpus format, if the file name does not tell.")
@click.option("--text-field", help="Column or field holding the text [default: headline_text, text, ...].")
@click.option("--date-field", help="Column or field holding the date [default: publish_date, date].")
@click.option("--id-field", help="Column or field holding an integer id [default: id, else the row number].")
@click.option("--skip-bad-rows", is_flag=True, help="Skip and count malformed rows instead of stopping at the first.")
@click.option("--dedupe", is_flag=True, help="Skip and count documents whose text repeats an earlier one exactly.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True, help="Texts embedded at once.")
@click.option("--parallel", type=click.Choice(PARALLEL_MODES), help="Embed in worker processes or threads, or serially [default: processes].")
@click.option("--workers", type=click.IntRange(min=1), help="Embedding workers [default: one per CPU this process may use].")
@click.option("--resume", is_flag=True, help="Go on with an interrupted build of the same command from its last completed batch.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def build(ctx: click.Context, source: str | None, embeddings: str | None, path: Path, backend: str, params: tuple[str, ...], reduce_to: str | None, encoder: str, limit: int | None, corpus_format: str | None,
          text_field: str | None, date_field: str | None, id_field: str | None, skip_bad_rows: bool, dedupe: bool, batch_size: int,
          parallel: str | None, workers: int | None, resume: bool, quiet: bool) -> None:
    """Build a collection from SOURCE: a corpus file (.csv, .tsv, .txt, .jsonl, .parquet, optionally .gz)
    or a bundled data set (see `semsearch datasets`).

    \b
      semsearch build abcnews-date-text.csv -o news.semsearch
      semsearch build abcnews-sample -o news.semsearch --backend exact
      semsearch build abcnews-date-text.csv -o news.semsearch --resume   # after Ctrl-C
      semsearch build --from-embeddings 'emb/news-*.parquet' -o news.semsearch
    """
    if (source is None) == (embeddings is None):
        raise click.UsageError("give either SOURCE or --from-embeddings PATTERN")
    if embeddings is not None:
        explicit = ctx.get_parameter_source("encoder") is not click.core.ParameterSource.DEFAULT
        collection = Collection.build_from_embeddings(
            embeddings, path, encoder=encoder if explicit else None, backend=backend, backend_params=parse_params(params),
            reduce=reduce_to, batch_size=batch_size, progress=not quiet, resume=resume,
        )
    else:
        collection = Collection.build(
            source, path, encoder=encoder, backend=backend, backend_params=parse_params(params), reduce=reduce_to,
            batch_size=batch_size, progress=not quiet, parallel=parallel, workers=workers, resume=resume,
            format=corpus_format, text_field=text_field, date_field=date_field, id_field=id_field, skip_bad_rows=skip_bad_rows, limit=limit, dedupe=dedupe,
        )
    stats = collection.build_stats
    skipped = []
    if stats and stats.skipped_empty:
        skipped.append(f"{stats.skipped_empty:,} empty")
    if stats and stats.skipped_bad:
        skipped.append(f"{stats.skipped_bad:,} bad")
    if stats and stats.skipped_duplicate:
        skipped.append(f"{stats.skipped_duplicate:,} duplicate")
    note = f" (skipped {', '.join(skipped)})" if skipped else ""
    resumed = f"; resumed after {collection.resumed_at:,} documents" if collection.resumed_at else ""
    click.echo(f"built {path}: {len(collection):,} documents, {collection.index.name} index{note}{resumed}", err=True)


def corpus_options(function: Any) -> Any:
    """The options that say how to read a corpus file, shared by build and add."""
    options = [
        click.option("--format", "corpus_format", type=click.Choice(sorted(set(FORMATS.values()))), help="Corpus format, if the file name does not tell."),
        click.option("--text-field", help="Column or field holding the text [default: headline_text, text, ...]."),
        click.option("--date-field", help="Column or field holding the date [default: publish_date, date]."),
        click.option("--id-field", help="Column or field holding an integer id [default: id, else the row number]."),
        click.option("--skip-bad-rows", is_flag=True, help="Skip and count malformed rows instead of stopping at the first."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@cli.command(name="beam-embed", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("source")
@click.argument("output_prefix")
@click.option("--encoder", default=DEFAULT_ENCODER, show_default=True, help="Text encoder, NAME or NAME:ARGUMENT.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True, help="Texts embedded at once.")
@click.option("--encoder-threads", type=click.IntRange(min=1), default=1, show_default=True, help="BLAS threads per Beam worker.")
@click.option("--limit", type=click.IntRange(min=1), help="Embed only the first N documents.")
@corpus_options
@click.pass_context
def beam_embed(ctx: click.Context, source: str, output_prefix: str, encoder: str, batch_size: int, encoder_threads: int, limit: int | None,
               corpus_format: str | None, text_field: str | None, date_field: str | None, id_field: str | None, skip_bad_rows: bool) -> None:
    """Embed SOURCE on Apache Beam into sharded Parquet files OUTPUT_PREFIX-SSSSS-of-NNNNN.parquet.

    Options this command does not know go to Beam: the DirectRunner by default (one worker
    process per CPU), or --runner DataflowRunner / FlinkRunner / SparkRunner with their options.

    \b
      semsearch beam-embed abcnews-sample emb/news
      semsearch build --from-embeddings 'emb/news*.parquet' -o news.semsearch
    """
    from semsearch.beam import run_pipeline
    from semsearch.collection import resolve_source

    files = run_pipeline(
        str(resolve_source(source)), output_prefix, ctx.args, encoder=encoder, batch_size=batch_size, threads=encoder_threads,
        format=corpus_format, text_field=text_field, date_field=date_field, id_field=id_field, skip_bad_rows=skip_bad_rows, limit=limit,
    )
    click.echo(f"wrote {len(files)} Parquet files: {output_prefix}-*.parquet", err=True)
    click.echo(f"build the collection with: semsearch build --from-embeddings '{output_prefix}*.parquet' -o NAME.semsearch", err=True)


def report_update(path: Path, stats: UpdateStats) -> None:
    parts = [f"{stats.added:,} added", f"{stats.replaced:,} replaced", f"{stats.removed:,} removed"]
    note = f"; not in the collection: {', '.join(map(str, stats.not_found))}" if stats.not_found else ""
    rebuilt = ", index rebuilt" if stats.rebuilt else ""
    click.echo(f"updated {path}: {', '.join(parts)}{rebuilt}; {stats.count:,} documents{note}", err=True)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("source")
@corpus_options
@click.option("--no-replace", is_flag=True, help="Stop with an error, changing nothing, if an id is in the collection already.")
@click.option("--rebuild", is_flag=True, help="Rebuild the index from the stored vectors, for backends that cannot add (annoy).")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_BATCH_SIZE, show_default=True, help="Texts embedded at once.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def add(path: Path, source: str, corpus_format: str | None, text_field: str | None, date_field: str | None, id_field: str | None,
        skip_bad_rows: bool, no_replace: bool, rebuild: bool, batch_size: int, quiet: bool) -> None:
    """Add the documents of SOURCE to the collection at PATH, in place.

    A document whose id is in the collection already replaces the old one (upsert); rows
    without an id are numbered after the largest id. Readers keep searching meanwhile and
    see the old contents until the update is complete; an error or a crash changes nothing.

    \b
      semsearch add news.semsearch todays-headlines.csv
      semsearch add news.semsearch corrections.jsonl --id-field id
    """
    with Collection.open(path, verify=False) as collection:
        update = collection.add if no_replace else collection.upsert
        stats = update(
            source, rebuild=rebuild, batch_size=batch_size, progress=not quiet, format=corpus_format, text_field=text_field,
            date_field=date_field, id_field=id_field, skip_bad_rows=skip_bad_rows,
        )
    report_update(path, stats)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--id", "ids", type=int, multiple=True, required=True, help="Id of a document to remove; repeatable.")
@click.option("--rebuild", is_flag=True, help="Rebuild the index from the stored vectors, for backends that cannot remove (annoy).")
def remove(path: Path, ids: tuple[int, ...], rebuild: bool) -> None:
    """Remove documents by id from the collection at PATH, in place.

    \b
      semsearch remove news.semsearch --id 17 --id 4242
    """
    with Collection.open(path, verify=False) as collection:
        stats = collection.remove(ids, rebuild=rebuild)
    report_update(path, stats)


def format_hits(query: str, hits: list[Hit]) -> str:
    lines = [f"{query}"] if hits else [f"{query}: no matches"]
    for rank, hit in enumerate(hits, start=1):
        date = hit.date.isoformat() if hit.date else " " * 10
        lines.append(f"{rank:3d}. {hit.score:.3f}  {date}  {hit.text}")
    return "\n".join(lines)


def _queries(query: str | None) -> Iterator[str]:
    """The argument, or a prompt at a terminal, or one query per line of stdin."""
    if query is not None:
        yield query
        return
    if sys.stdin.isatty():
        click.echo("Type a query and press Enter; an empty line or Ctrl-D quits.", err=True)
        while True:
            try:
                line = input("query> ")
            except EOFError:
                return
            if not line.strip():
                return
            yield line.strip()
    else:
        for line in sys.stdin:
            if line.strip():
                yield line.strip()


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("query", required=False)
@click.option("-k", type=click.IntRange(min=1, max=1000), default=10, show_default=True, help="Number of hits.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per query: {query, hits: [{id, text, date, score}]}.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Search-time backend parameter, e.g. expansion_search=128.")
@click.option("--mode", type=click.Choice(MODES), default="semantic", show_default=True,
              help="semantic: by meaning; keyword: by words (BM25); hybrid: both, fused by reciprocal rank.")
@click.option("--date-from", metavar="YYYY-MM-DD", help="Only documents dated on or after this day.")
@click.option("--date-to", metavar="YYYY-MM-DD", help="Only documents dated on or before this day.")
@click.option("--where", "where", multiple=True, metavar="FIELD=VALUE", help="Only documents whose metadata FIELD is VALUE; repeatable.")
def search(path: Path, query: str | None, k: int, as_json: bool, params: tuple[str, ...], mode: str, date_from: str | None,
           date_to: str | None, where: tuple[str, ...]) -> None:
    """Search the collection at PATH for QUERY.

    Without QUERY: an interactive prompt at a terminal, otherwise one query per line of stdin.

    \b
      semsearch search news.semsearch "confronting global challenges"
      semsearch search news.semsearch "desafíos globales" -k 5 --json
      semsearch search news.semsearch "rivkin trial" --mode hybrid --date-from 2003-03-01 --date-to 2003-03-31
    """
    search_params = parse_params(params)
    filters = {"mode": mode, "date_from": date_from, "date_to": date_to, "where": parse_where(where)}
    Filter.of(date_from, date_to, filters["where"])  # a bad date is reported before the collection is opened
    with Collection.open(path) as collection:
        for text in _queries(query):
            hits = collection.search(text, k=k, **filters, **search_params)
            if as_json:
                click.echo(json.dumps({"query": text, "hits": [hit.to_json() for hit in hits]}, ensure_ascii=False))
            else:
                click.echo(format_hits(text, hits))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
def info(path: Path, as_json: bool) -> None:
    """What the collection at PATH holds and what built it."""
    with Collection.open(path, verify=False) as collection:
        facts = collection.info()
    if as_json:
        click.echo(json.dumps(facts, indent=2, ensure_ascii=False))
        return
    encoder, backend = facts["encoder"], facts["backend"]
    params = ", ".join(f"{key}={value}" for key, value in sorted(backend["params"].items()))
    click.echo(f"path:       {facts['path']}")
    click.echo(f"documents:  {facts['count']:,}")
    click.echo(f"encoder:    {format_spec(encoder['name'], encoder.get('argument'))} {encoder['version']}, {encoder['dim']} dimensions")
    click.echo(f"backend:    {backend['name']} ({params})")
    if facts.get("reducer"):
        click.echo(f"reducer:    {facts['reducer']['kind']} to {facts['reducer']['dim']} dimensions")
    click.echo(f"size:       {facts['size_bytes'] / 1e6:,.1f} MB in {', '.join(facts['files'])}")
    click.echo(f"built:      {facts['created']} by semsearch {facts['semsearch_version']}, format {facts['format_version']}")


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
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; 0.0.0.0 for every interface.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes; they share the memory-mapped index. Up to one per core.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log one line per request.")
def serve(path: Path, host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve the collection at PATH over HTTP: a search page at / and a JSON API (docs at /docs).

    \b
      semsearch serve news.semsearch
      curl 'http://127.0.0.1:8000/search?q=flood+warning&k=3'
    """
    from semsearch.server import serve as run_server

    run_server(path, host=host, port=port, workers=workers, access_log=access_log)


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


def main() -> None:
    cli(prog_name="semsearch")
