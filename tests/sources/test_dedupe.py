"""--dedupe: exact duplicate texts are skipped at build, and counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch import Collection, read_corpus
from semsearch.backends import create_index
from semsearch.writing.build import CorpusSource, build_plan
from semsearch.writing.checkpoint import BuildWorkspace
from semsearch.cli import cli
from semsearch.errors import CollectionError

CSV = (
    "publish_date,headline_text\n"
    "20030219,police find body in river\n"
    "20030219,council approves budget\n"
    "20030220,police find body in river\n"  # repeat
    "20030220,  council approves budget  \n"  # repeat once stripped
    "20030221,Police find body in river\n"  # differs in case: kept
    "20030221,\n"  # empty: skipped as empty, not as a duplicate
)


def test_reader_skips_and_counts_repeats(tmp_path: Path) -> None:
    source = tmp_path / "news.csv"
    source.write_text(CSV)
    corpus = read_corpus(source, dedupe=True)
    documents = list(corpus)
    assert [(d.id, d.text) for d in documents] == [(0, "police find body in river"), (1, "council approves budget"), (2, "Police find body in river")]
    assert (corpus.stats.documents, corpus.stats.skipped_duplicate, corpus.stats.skipped_empty) == (3, 2, 1)
    plain = read_corpus(source)
    assert len(list(plain)) == 5 and plain.stats.skipped_duplicate == 0


def test_build_dedupe_reports_the_count(tmp_path: Path, real_encoder) -> None:
    source = tmp_path / "news.csv"
    source.write_text(CSV)
    result = CliRunner().invoke(cli, ["build", str(source), "-o", str(tmp_path / "c.semsearch"), "--dedupe", "-q"])
    assert result.exit_code == 0, result.output
    assert "3 documents" in result.output and "skipped 1 empty, 2 duplicate" in result.output
    with Collection.open(tmp_path / "c.semsearch", encoder=real_encoder) as collection:
        assert len(collection) == 3
        assert len(collection.search("police find body in river", k=10, mode="keyword")) == 2


def test_resume_refuses_a_build_that_dedupes_differently(tmp_path: Path, fake_encoder) -> None:
    """Deduplicating changes which documents get which ids, so it is part of what a resumed build must repeat."""
    source = tmp_path / "news.csv"
    source.write_text(CSV)
    index = create_index("exact", fake_encoder.dim)
    plans = {dedupe: build_plan(CorpusSource(read_corpus(source, dedupe=dedupe), fake_encoder, batch_size=10), fake_encoder, index)
             for dedupe in (False, True)}
    target = tmp_path / "news.semsearch"
    BuildWorkspace(target, plans[False]).open(resume=False).release()
    with pytest.raises(CollectionError, match="differs in corpus"):
        BuildWorkspace(target, plans[True]).open(resume=True)
