"""``semsearch get``, ``list``, ``count``, ``export`` and ``similar``: getting at a collection's documents."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from semsearch.cli.group import cli, document_ids, encoder_trust_options, filter_options, parse_params
from semsearch.collection import Collection
from semsearch.documents import Document
from semsearch.filters import parse_where
from semsearch.storage.export import FORMATS


def document_json(document: Document) -> dict[str, Any]:
    return {"id": document.id, "text": document.text, "date": document.date.isoformat() if document.date else None, "meta": document.meta}


def _filters(date_from: str | None, date_to: str | None, where: tuple[str, ...]) -> dict[str, Any]:
    return {"date_from": date_from, "date_to": date_to, "where": parse_where(where) or None}


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("ids", nargs=-1, required=True)
def get(path: Path, ids: tuple[str, ...]) -> None:
    """Print the documents with these IDS, one JSON object per line; an id not there is an error.

    \b
      semsearch get news.semsearch 17 4242
    """
    with Collection.open(path, verify=False) as collection:
        wanted = document_ids(collection, ids)
        found = {document.id: document for document in collection.get(wanted)}
    for document_id in wanted:
        if document_id in found:
            click.echo(json.dumps(document_json(found[document_id]), ensure_ascii=False))
    missing = [str(document_id) for document_id in wanted if document_id not in found]
    if missing:
        raise click.ClickException(f"not in {path}: {', '.join(missing)}")


@cli.command(name="list")
@click.argument("path", type=click.Path(path_type=Path))
@filter_options
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, help="At most this many documents.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many first.")
def list_command(path: Path, date_from: str | None, date_to: str | None, where: tuple[str, ...], limit: int, offset: int) -> None:
    """Print the documents (in id order, filtered) one JSON object per line.

    \b
      semsearch list news.semsearch --where desk=sport --limit 5 --offset 10
    """
    with Collection.open(path, verify=False) as collection:
        for document in collection.iter_documents(**_filters(date_from, date_to, where), limit=limit, offset=offset):
            click.echo(json.dumps(document_json(document), ensure_ascii=False))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@filter_options
def count(path: Path, date_from: str | None, date_to: str | None, where: tuple[str, ...]) -> None:
    """Print how many documents match the filters (all of them without any).

    \b
      semsearch count news.semsearch --date-from 2003-03-01 --where 'desk in (business,sport)'
    """
    with Collection.open(path, verify=False) as collection:
        click.echo(collection.count(**_filters(date_from, date_to, where)))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="File to write [default: standard output; Parquet needs a file].")
@click.option("--format", "export_format", type=click.Choice(FORMATS), default="jsonl", show_default=True, help="Output format.")
@click.option("--vectors", is_flag=True, help="Include each document's vector.")
@filter_options
@click.option("--limit", type=click.IntRange(min=0), help="At most this many documents.")
def export(path: Path, output: Path | None, export_format: str, vectors: bool, date_from: str | None, date_to: str | None,
           where: tuple[str, ...], limit: int | None) -> None:
    """Write the documents (filtered) as JSONL, CSV or Parquet, streaming: memory stays bounded.

    \b
      semsearch export news.semsearch -o news.parquet --format parquet --vectors
    """
    with Collection.open(path, verify=False) as collection:
        written = collection.export(output if output is not None else sys.stdout, export_format, vectors=vectors,
                                    **_filters(date_from, date_to, where), limit=limit)
    click.echo(f"exported {written:,} documents{f' to {output}' if output else ''}", err=True)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("document_id", metavar="ID")
@click.option("-k", type=click.IntRange(min=1, max=1000), default=10, show_default=True, help="Number of hits.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: {id, hits: [{id, text, date, score}]}.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Search-time backend parameter.")
@filter_options
@encoder_trust_options
def similar(path: Path, document_id: str, k: int, as_json: bool, params: tuple[str, ...], date_from: str | None, date_to: str | None,
            where: tuple[str, ...], encoder: str | None, trust_encoder: bool) -> None:
    """The K documents nearest in meaning to the stored document ID, itself left out.

    \b
      semsearch similar news.semsearch 4242 -k 5
    """
    from semsearch.cli.search import format_hits

    with Collection.open(path, verify=False, encoder=encoder, trust_encoder=trust_encoder) as collection:
        [wanted] = document_ids(collection, (document_id,))
        [source] = collection.get([wanted]) or [None]
        hits = collection.similar(wanted, k, **_filters(date_from, date_to, where), **parse_params(params))
    if as_json:
        click.echo(json.dumps({"id": wanted, "hits": [hit.to_json() for hit in hits]}, ensure_ascii=False))
    else:
        click.echo(format_hits(f"like {document_id}: {source.text if source else ''}", hits))
