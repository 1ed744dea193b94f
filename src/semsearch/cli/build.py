"""``semsearch build`` and ``semsearch beam-embed``: making a collection, or the vectors for one."""

from __future__ import annotations

from pathlib import Path

import click

from semsearch.backends import BACKENDS, DEFAULT_BACKEND
from semsearch.cli.group import cli, corpus_options, parse_params
from semsearch.collection import Collection
from semsearch.encoders import DEFAULT_ENCODER
from semsearch.encoders.parallel import DEFAULT_BATCH_SIZE, PARALLEL_MODES
from semsearch.sources.datasets import resolve_source


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
@corpus_options
@click.option("--dedupe", is_flag=True, help="Skip and count documents whose text repeats an earlier one exactly.")
@click.option("--batch-size", type=click.IntRange(min=1, max=1_000_000), default=DEFAULT_BATCH_SIZE, show_default=True, help="Texts embedded at once.")
@click.option("--parallel", type=click.Choice(PARALLEL_MODES), help="Embed in worker processes or threads, or serially [default: processes].")
@click.option("--workers", type=click.IntRange(min=1), help="Embedding workers [default: one per CPU this process may use].")
@click.option("--resume", is_flag=True, help="Go on with an interrupted build of the same command from its last completed batch.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def build(ctx: click.Context, source: str | None, embeddings: str | None, path: Path, backend: str, params: tuple[str, ...], reduce_to: str | None, encoder: str, limit: int | None, corpus_format: str | None,
          text_field: str | None, date_field: str | None, id_field: str | None, skip_bad_rows: bool, delimiter: str | None, dedupe: bool, batch_size: int,
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
            format=corpus_format, text_field=text_field, date_field=date_field, id_field=id_field, skip_bad_rows=skip_bad_rows, delimiter=delimiter, limit=limit, dedupe=dedupe,
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

@cli.command(name="beam-embed", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("source")
@click.argument("output_prefix")
@click.option("--encoder", default=DEFAULT_ENCODER, show_default=True, help="Text encoder, NAME or NAME:ARGUMENT.")
@click.option("--batch-size", type=click.IntRange(min=1, max=1_000_000), default=DEFAULT_BATCH_SIZE, show_default=True, help="Texts embedded at once.")
@click.option("--encoder-threads", type=click.IntRange(min=1), default=1, show_default=True, help="BLAS threads per Beam worker.")
@click.option("--limit", type=click.IntRange(min=1), help="Embed only the first N documents.")
@click.option("-v", "--verbose", is_flag=True, help="Show Beam's own log (otherwise kept in a file, and named if the pipeline fails).")
@corpus_options
@click.pass_context
def beam_embed(ctx: click.Context, source: str, output_prefix: str, encoder: str, batch_size: int, encoder_threads: int, limit: int | None,
               verbose: bool, corpus_format: str | None, text_field: str | None, date_field: str | None, id_field: str | None,
               skip_bad_rows: bool, delimiter: str | None) -> None:
    """Embed SOURCE on Apache Beam into sharded Parquet files OUTPUT_PREFIX-SSSSS-of-NNNNN.parquet.

    Options this command does not know go to Beam: the DirectRunner by default (one worker
    process per CPU), or --runner DataflowRunner / FlinkRunner / SparkRunner with their options.

    \b
      semsearch beam-embed abcnews-sample emb/news
      semsearch build --from-embeddings 'emb/news*.parquet' -o news.semsearch
    """
    from semsearch.sources.beam import run_pipeline

    files = run_pipeline(
        str(resolve_source(source)), output_prefix, ctx.args, encoder=encoder, batch_size=batch_size, threads=encoder_threads, verbose=verbose,
        format=corpus_format, text_field=text_field, date_field=date_field, id_field=id_field, skip_bad_rows=skip_bad_rows, delimiter=delimiter, limit=limit,
    )
    click.echo(f"wrote {len(files)} Parquet files: {output_prefix}-*.parquet", err=True)
    click.echo(f"build the collection with: semsearch build --from-embeddings '{output_prefix}*.parquet' -o NAME.semsearch", err=True)
