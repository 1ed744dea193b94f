"""The ``semsearch`` click group and what its commands share: one-line errors, ``--param`` and corpus options."""

from __future__ import annotations

import os
import sqlite3
import sys
import traceback
from typing import Any

import click

from semsearch import __version__
from semsearch.errors import BuildInterrupted, SemsearchError
from semsearch.sources.corpus import FORMATS


# Set to 1 to see the traceback of an unexpected error instead of its one line.
DEBUG_VARIABLE = "SEMSEARCH_DEBUG"


def one_line(text: str) -> str:
    return " ".join(text.splitlines()) or "unknown error"


def describe_os_error(error: OSError) -> str:
    """An OSError as a user reads it: the file, what the system said, and nothing of Python's."""
    where = error.filename if error.filename is not None else ""
    reason = error.strerror or str(error)
    return f"{where}: {reason}" if where else reason


class SemsearchGroup(click.Group):
    """Turns every error into one line on stderr and exit status 1, without a traceback.

    A ``SemsearchError`` is the user's to fix and says how; an ``OSError`` (disk full, read-only,
    permissions) or a SQLite error names the file; Ctrl-C exits 130 as a shell expects. Anything
    else is a bug in semsearch: still one line, saying so (``SEMSEARCH_DEBUG=1`` shows the traceback).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except SemsearchError as error:
            raise click.ClickException(one_line(str(error))) from None
        except BuildInterrupted as interrupted:
            click.echo(f"interrupted: {one_line(str(interrupted))}", err=True)
            ctx.exit(130)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except OSError as error:
            raise click.ClickException(one_line(describe_os_error(error))) from None
        except sqlite3.Error as error:
            raise click.ClickException(one_line(f"SQLite: {error}")) from None
        except ValueError as error:
            if "null byte" not in str(error):  # os functions refuse a path holding NUL (click's Path checks it so)
                raise self._unexpected(error) from None
            raise click.ClickException("a path cannot hold a NUL byte") from None
        except Exception as error:  # noqa: BLE001 - the last resort that keeps the promise of one line
            raise self._unexpected(error) from None

    @staticmethod
    def _unexpected(error: Exception) -> click.ClickException:
        if os.environ.get(DEBUG_VARIABLE) == "1":
            traceback.print_exception(error, file=sys.stderr)
        return click.ClickException(one_line(
            f"unexpected {type(error).__name__}: {error} (a bug in semsearch; {DEBUG_VARIABLE}=1 shows where)"))

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
        click.option("--id-field", help="Column or field holding the id, an integer or a string [default: id, else the row number]."),
        click.option("--skip-bad-rows", is_flag=True, help="Skip and count malformed rows instead of stopping at the first."),
        click.option("--delimiter", metavar="CHAR", help="The field delimiter of a csv or tsv file [default: tab for tsv; for csv a comma, "
                                                          "or the ; tab or | its header has instead]."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def encoder_trust_options(function: Any) -> Any:
    """``--encoder`` and ``--trust-encoder``, for the commands that encode with a collection's own encoder.

    A collection whose manifest names a model by path or hub name (``tfhub:/x``,
    ``sentence-transformers:NAME``) would make semsearch load and run that model; that happens
    only when the user names the same encoder or says they trust the collection.
    """
    options = [
        click.option("--encoder", "encoder", metavar="NAME[:ARGUMENT]",
                     help="The encoder the collection was built with, named by you: loads that model even if the collection chose it."),
        click.option("--trust-encoder", is_flag=True, help="Load whatever encoder the collection's manifest names (only for collections you trust)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def filter_options(function: Any) -> Any:
    """``--date-from``, ``--date-to`` and ``--where``, for every command that filters documents."""
    options = [
        click.option("--date-from", metavar="YYYY-MM-DD", help="Only documents dated on or after this day."),
        click.option("--date-to", metavar="YYYY-MM-DD", help="Only documents dated on or before this day."),
        click.option("--where", "where", multiple=True, metavar="CONDITION",
                     help="Only documents whose metadata matches: FIELD=VALUE, FIELD!=VALUE, FIELD>=VALUE (> <= <), "
                          "'FIELD in (A,B)', 'FIELD not in (A,B)'; repeatable, all must hold."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def document_ids(collection: Any, values: tuple[str, ...]) -> list[Any]:
    """Ids typed on the command line, as the collection keeps them: integers where its ids are (a value that is not
    one is kept as typed, so it is simply not found), the text as typed where they are strings."""
    from semsearch.documents import id_from_text

    return [id_from_text(value, collection.id_kind) for value in values]
