"""``semsearch add`` and ``semsearch remove``: changing a built collection in place."""

from __future__ import annotations

from pathlib import Path

import click

from semsearch.cli.group import cli, corpus_options, document_ids, encoder_trust_options
from semsearch.collection import Collection
from semsearch.encoders.parallel import DEFAULT_BATCH_SIZE
from semsearch.writing.update import UpdateStats


def report_update(path: Path, stats: UpdateStats) -> None:
    parts = [f"{stats.added:,} added", f"{stats.replaced:,} replaced", f"{stats.removed:,} removed"]
    note = f"; not in the collection: {', '.join(map(str, stats.not_found))}" if stats.not_found else ""
    merged = f", {stats.merged} segments merged" if stats.merged else ""
    click.echo(f"updated {path}: {', '.join(parts)}; {stats.count:,} documents in {stats.segments} segment{'s' if stats.segments != 1 else ''}{merged}{note}", err=True)

@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("source")
@corpus_options
@click.option("--no-replace", is_flag=True, help="Stop with an error, changing nothing, if an id is in the collection already.")
@click.option("--rebuild", is_flag=True, hidden=True, help="No longer needed: every backend takes additions (a new segment).")
@click.option("--batch-size", type=click.IntRange(min=1, max=1_000_000), default=DEFAULT_BATCH_SIZE, show_default=True, help="Texts embedded at once.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@encoder_trust_options
def add(path: Path, source: str, corpus_format: str | None, text_field: str | None, date_field: str | None, id_field: str | None,
        skip_bad_rows: bool, delimiter: str | None, no_replace: bool, rebuild: bool, batch_size: int, quiet: bool, encoder: str | None, trust_encoder: bool) -> None:
    """Add the documents of SOURCE to the collection at PATH, in place.

    A document whose id is in the collection already replaces the old one (upsert); rows
    without an id are numbered after the largest id. Readers keep searching meanwhile and
    see the old contents until the update is complete; an error or a crash changes nothing.

    \b
      semsearch add news.semsearch todays-headlines.csv
      semsearch add news.semsearch corrections.jsonl --id-field id
    """
    with Collection.open(path, verify=False, encoder=encoder, trust_encoder=trust_encoder) as collection:
        update = collection.add if no_replace else collection.upsert
        stats = update(
            source, rebuild=rebuild, batch_size=batch_size, progress=not quiet, format=corpus_format, text_field=text_field,
            date_field=date_field, id_field=id_field, skip_bad_rows=skip_bad_rows, delimiter=delimiter,
        )
    report_update(path, stats)

@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--id", "ids", multiple=True, required=True, help="Id of a document to remove; repeatable.")
@click.option("--rebuild", is_flag=True, hidden=True, help="No longer needed: removals are deletion records.")
def remove(path: Path, ids: tuple[str, ...], rebuild: bool) -> None:
    """Remove documents by id from the collection at PATH, in place.

    \b
      semsearch remove news.semsearch --id 17 --id 4242
    """
    with Collection.open(path, verify=False) as collection:
        stats = collection.remove(document_ids(collection, ids))
    report_update(path, stats)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
def compact(path: Path) -> None:
    """Merge every segment of the collection at PATH into one, leaving out removed and replaced documents.

    Updates add segments and record deletions; after every update the fewest-document segments
    are merged once there are more than 10, but the large segment a build wrote is merged only
    here. Searches go on meanwhile and a crash leaves the collection as it was.

    \b
      semsearch compact news.semsearch
    """
    with Collection.open(path, verify=False) as collection:
        before = sum(segment.entry.deleted_count for segment in collection.segments)
        merged = collection.compact()
        click.echo(f"compacted {path}: {merged} segments into 1, {before:,} deleted documents dropped; {len(collection):,} documents",
                   err=True)
