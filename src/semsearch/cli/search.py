"""``semsearch search``, ``info`` and ``serve``: reading a collection."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from semsearch.cli.group import cli, encoder_trust_options, filter_options, parse_params
from semsearch.collection import Collection
from semsearch.documents import Hit
from semsearch.encoders import format_spec
from semsearch.filters import parse_where
from semsearch.search.query import MODES, SearchRequest


def format_hits(query: str, hits: list[Hit], first_rank: int = 1) -> str:
    lines = [f"{query}"] if hits else [f"{query}: no matches"]
    for rank, hit in enumerate(hits, start=first_rank):
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
@filter_options
@click.option("--offset", type=click.IntRange(min=0, max=10_000), default=0, show_default=True, help="Skip this many hits first (the next page).")
@click.option("--min-score", type=float, help="Leave out hits scored below this.")
@encoder_trust_options
def search(path: Path, query: str | None, k: int, as_json: bool, params: tuple[str, ...], mode: str, date_from: str | None,
           date_to: str | None, where: tuple[str, ...], offset: int, min_score: float | None, encoder: str | None, trust_encoder: bool) -> None:
    """Search the collection at PATH for QUERY.

    Without QUERY: an interactive prompt at a terminal, otherwise one query per line of stdin.

    \b
      semsearch search news.semsearch "confronting global challenges"
      semsearch search news.semsearch "desafíos globales" -k 5 --json
      semsearch search news.semsearch "rivkin trial" --mode hybrid --date-from 2003-03-01 --date-to 2003-03-31
    """
    # Made once, so a bad date or filter is reported before the collection is opened.
    request = SearchRequest.of(k, mode=mode, date_from=date_from, date_to=date_to, where=parse_where(where), offset=offset,
                               min_score=min_score, **parse_params(params))
    with Collection.open(path, encoder=encoder, trust_encoder=trust_encoder) as collection:
        for text in _queries(query):
            [hits] = collection.search_request([text], request)
            if as_json:
                click.echo(json.dumps({"query": text, "hits": [hit.to_json() for hit in hits]}, ensure_ascii=False))
            else:
                click.echo(format_hits(text, hits, first_rank=offset + 1))

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
    if facts["ids"] == "string":
        click.echo("ids:        strings")
    segments = facts["segments"]
    if len(segments) > 1 or any(segment["deleted"] for segment in segments):
        parts = ", ".join(f"{s['name']} {s['documents']:,}" + (f" ({s['deleted']:,} deleted)" if s["deleted"] else "") for s in segments)
        click.echo(f"segments:   {len(segments)}: {parts}; `semsearch compact` merges them and drops the deleted")
    files = facts["files"] if len(facts["files"]) <= 8 else [*facts["files"][:8], f"{len(facts['files']) - 8} more"]
    click.echo(f"size:       {facts['size_bytes'] / 1e6:,.1f} MB in {', '.join(files)}")
    click.echo(f"built:      {facts['created']} by semsearch {facts['semsearch_version']}, format {facts['format_version']}")

@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; 0.0.0.0 for every interface.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes; they share the memory-mapped index. Up to one per core.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log one line per request.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also answer requests for this Host (NAME, or NAME:PORT), e.g. the name other machines use; repeatable; * for any. "
                   "Others get 421, against DNS rebinding.")
@click.option("--token", envvar="SEMSEARCH_TOKEN", metavar="TOKEN",
              help="Require Authorization: Bearer TOKEN on every request but /health and the page (open it as /?token=TOKEN). "
                   "Default: $SEMSEARCH_TOKEN.")
@click.option("--write-token", envvar="SEMSEARCH_WRITE_TOKEN", metavar="TOKEN",
              help="Turn on writes: POST /documents (upsert) and DELETE /documents (remove) with Authorization: Bearer TOKEN. "
                   "Off without it (403). Default: $SEMSEARCH_WRITE_TOKEN.")
@encoder_trust_options
def serve(path: Path, host: str, port: int, workers: int, access_log: bool, allow_hosts: tuple[str, ...], token: str | None,
          write_token: str | None, encoder: str | None, trust_encoder: bool) -> None:
    """Serve the collection at PATH over HTTP: a search page at / and a JSON API (docs at /docs).

    \b
      semsearch serve news.semsearch
      curl 'http://127.0.0.1:8000/search?q=flood+warning&k=3'
      SEMSEARCH_TOKEN=... semsearch serve news.semsearch --host 0.0.0.0 --allow-host search.example.org
      SEMSEARCH_WRITE_TOKEN=... semsearch serve news.semsearch
    """
    from semsearch.server import serve as run_server

    run_server(path, host=host, port=port, workers=workers, access_log=access_log, allow_hosts=allow_hosts, token=token or None,
               encoder=encoder, trust_encoder=trust_encoder, write_token=write_token or None)
