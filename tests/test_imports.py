"""Public imports keep working after the regroup: the package's names, and every module's old path."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from semsearch._moved import MOVED


def test_the_public_names() -> None:
    from semsearch import Collection, Document, Hit, SemsearchError, read_corpus  # noqa: F401
    from semsearch.encoders import Encoder, get_encoder  # noqa: F401
    from semsearch.cli import cli, main  # noqa: F401


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_an_old_module_path_is_the_module_at_its_new_place(old: str, new: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(new)


def test_old_from_imports_in_a_fresh_interpreter() -> None:
    """As a user's script would: nothing imported before, names taken from the old modules."""
    code = (
        "from semsearch.corpus import read_corpus\n"
        "from semsearch.store import DocumentStore\n"
        "from semsearch.reduce import new_index, Reducer\n"
        "from semsearch.embedding import embed_documents\n"
        "import semsearch.retrieval\n"
        "print(semsearch.retrieval.fuse.__module__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "semsearch.search.retrieval"


def test_no_module_is_left_at_an_old_place() -> None:
    from importlib.resources import files

    package = files("semsearch")
    for old in MOVED:
        assert not package.joinpath(old.split(".", 1)[1] + ".py").is_file(), old
