"""The semsearch command: click commands over the library, with no logic of their own.

One module per family of commands (build, update, search, documents, tools), each adding its commands to
the group in ``group``; importing this package registers them all.
"""

from __future__ import annotations

from semsearch.cli import build, documents, search, tools, update  # noqa: F401 - each registers its commands
from semsearch.cli.group import cli, parse_params

__all__ = ["cli", "main", "parse_params"]


def main() -> None:
    cli(prog_name="semsearch")
