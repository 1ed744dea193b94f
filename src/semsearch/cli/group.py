"""The ``semsearch`` click group and what its commands share: one-line errors, ``--param`` and corpus options."""

from __future__ import annotations

from typing import Any

import click

from semsearch import __version__
from semsearch.errors import BuildInterrupted, SemsearchError
from semsearch.sources.corpus import FORMATS


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
