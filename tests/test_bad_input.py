"""Bad input, tried: generated corpus files and command lines give a documented error or work, never a traceback,
and a failed update loses nothing from the collection it was meant to change."""

from __future__ import annotations

import gzip
import io
import json
import string
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import semsearch.encoders
from semsearch import Collection, read_corpus
from semsearch.cli import cli
from semsearch.errors import SemsearchError

# Examples tried per test; the closing counts of issue 6 add these up.
EXAMPLES = 150
TRIED: Counter[str] = Counter()
# The same inputs on every run (seeded from each test's source), and no example database: a run never depends on
# the runs before it. Each test's @example cases make sure every branch its assertions watch is taken.
QUIET = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

COLUMN_NAMES = st.sampled_from(["headline_text", "text", "publish_date", "date", "id", "desk", "", "TEXT", "headline"])
CELL = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["20030219", "2003-02-19", "2003-02-30", "19990000", "2003-13-01", "0000-00-00", "9999-12-31T25:61", "-1", "1e9", "NaN"]),
    st.integers(-(2**70), 2**70).map(str),
    st.just("x" * 70_000),  # a huge field
)


@st.composite
def delimited_files(draw: st.DrawFn, delimiter: str) -> bytes:
    """Rows of generated cells, with a header that may or may not name the usual columns; rows of any width."""
    header = draw(st.lists(COLUMN_NAMES, min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=5), max_size=6))
    text = "\n".join(delimiter.join(row) for row in [header, *rows])
    return text.encode("utf-8", errors="surrogatepass") if draw(st.booleans()) else draw(st.binary(max_size=200)) + text.encode("utf-8", "replace")


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=20), CELL),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    lines = draw(
        st.lists(
            st.one_of(
                st.dictionaries(COLUMN_NAMES, JSON_VALUES, max_size=4).map(json.dumps),
                JSON_VALUES.map(json.dumps),
                st.text(max_size=40),
                st.just(""),
            ),
            max_size=6,
        )
    )
    return "\n".join(lines).encode("utf-8", errors="replace")


CORPUS_FILES = {
    "txt": st.one_of(st.binary(max_size=300), st.lists(st.text(max_size=40), max_size=8).map(lambda lines: "\n".join(lines).encode("utf-8", "replace"))),
    "csv": st.one_of(delimited_files(","), st.binary(max_size=300)),
    "tsv": st.one_of(delimited_files("\t"), st.binary(max_size=300)),
    "jsonl": st.one_of(jsonl_files(), st.binary(max_size=300)),
    "parquet": st.binary(max_size=300),
}


def parquet_bytes(rows: list[dict[str, object]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


# Per format, a file that reads to documents and one that gives a corpus error, tried on every run.
GOOD_FILES = {
    "txt": b"a plain text line\nanother one\n",
    "csv": b"publish_date,headline_text\n20030301,a new headline about rain\n",
    "tsv": b"publish_date\theadline_text\n20030301\tanother new headline\n",
    "jsonl": b'{"headline_text": "json headline here", "publish_date": "20030302"}\n',
}
BAD_FILES = {
    "txt": b"\xff\xfe\x00\x01",
    "csv": b"x,y\n1,2\n",
    "tsv": b"x\ty\n1\t2\n",
    "jsonl": b"{not json\n",
    "parquet": b"PAR1 but not parquet",
}


def good_file(suffix: str) -> bytes:
    return parquet_bytes([{"headline_text": "a parquet headline", "publish_date": "20030303"}]) if suffix == "parquet" else GOOD_FILES[suffix]


def read_all(path: Path, **options: object) -> int:
    """Read a corpus to the end: the number of documents, or a SemsearchError."""
    corpus = read_corpus(path, **options)
    return sum(1 for _ in corpus)


@pytest.mark.parametrize("suffix", sorted(CORPUS_FILES))
def test_readers_give_documents_or_a_corpus_error(tmp_path: Path, suffix: str) -> None:
    outcomes: Counter[str] = Counter()

    @QUIET
    @given(content=CORPUS_FILES[suffix], skip_bad_rows=st.booleans(), compression=st.sampled_from(["none", "gzip", "not gzip"]))
    @example(content=good_file(suffix), skip_bad_rows=False, compression="none")
    @example(content=good_file(suffix), skip_bad_rows=False, compression="gzip")
    @example(content=BAD_FILES[suffix], skip_bad_rows=False, compression="none")
    @example(content=good_file(suffix), skip_bad_rows=False, compression="not gzip")  # a .gz that is not gzip
    def check(content: bytes, skip_bad_rows: bool, compression: str) -> None:
        TRIED["corpus files"] += 1
        path = tmp_path / f"corpus.{suffix}{'' if compression == 'none' else '.gz'}"
        path.write_bytes(gzip.compress(content, mtime=0) if compression == "gzip" else content)
        try:
            for document in read_corpus(path, skip_bad_rows=skip_bad_rows):
                assert isinstance(document.id, int) and document.text.strip() == document.text and document.text
                outcomes["documents"] += 1
        except SemsearchError as error:
            message = str(error)
            assert "\n" not in message.strip() and str(path) in message, f"one line naming the file: {message!r}"
            outcomes["errors"] += 1

    check()
    assert outcomes["documents"] and outcomes["errors"], f"both outcomes checked: {dict(outcomes)}"


@pytest.fixture
def collection_path(tmp_path: Path, fake_encoder, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small collection the CLI opens with the fake encoder."""
    real_get_encoder = semsearch.encoders.get_encoder
    monkeypatch.setattr(semsearch.encoders, "get_encoder", lambda spec, argument=None: fake_encoder if spec == fake_encoder.name else real_get_encoder(spec, argument))
    source = tmp_path / "news.csv"
    source.write_text("publish_date,headline_text,desk\n" + "".join(f"2003021{i},headline number {i} about things,d{i % 3}\n" for i in range(10)))
    path = tmp_path / "news.semsearch"
    Collection.build(source, path, encoder=fake_encoder).close()
    return path


def contents(path: Path, encoder) -> dict[int, str]:
    with Collection.open(path, encoder=encoder) as collection:
        return {i: d.text for i, d in collection.store.get(collection.store.ids()).items()}


def no_traceback(result) -> None:
    """Exit 0, or 1 with one 'Error:' line, or 2 for click's usage errors; never an uncaught exception."""
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output


@pytest.mark.parametrize("suffix", ["csv", "tsv", "jsonl", "txt"])
def test_add_of_generated_files_loses_nothing(tmp_path: Path, collection_path: Path, fake_encoder, suffix: str) -> None:
    before = contents(collection_path, fake_encoder)
    exit_codes: Counter[int] = Counter()

    @QUIET
    @given(content=CORPUS_FILES[suffix], options=st.lists(st.sampled_from(["--skip-bad-rows", "--no-replace"]), unique=True))
    @example(content=GOOD_FILES[suffix], options=[])
    @example(content=BAD_FILES[suffix], options=[])
    def check(content: bytes, options: list[str]) -> None:
        TRIED["add commands"] += 1
        source = tmp_path / f"more.{suffix}"
        source.write_bytes(content)
        manifest = (collection_path / "manifest.json").read_bytes()
        current = contents(collection_path, fake_encoder)
        result = CliRunner().invoke(cli, ["add", str(collection_path), str(source), "-q", *options])
        no_traceback(result)
        exit_codes[result.exit_code] += 1
        after = contents(collection_path, fake_encoder)
        if result.exit_code != 0:
            assert (collection_path / "manifest.json").read_bytes() == manifest and after == current, "a failed add changes nothing"
        assert set(before) <= set(after), "an add never loses a document"

    check()
    assert exit_codes[0] and exit_codes[1], f"both a good and a failed add checked: {dict(exit_codes)}"
    assert len(contents(collection_path, fake_encoder)) > len(before), "the good adds added"


DATES = st.one_of(st.text(max_size=12), st.sampled_from(["2003-02-19", "2003-02-30", "20030219", "2003-2-1", "9999-12-31", "0001-01-01", " 2003-02-19"]))


def test_search_options_from_generated_input(collection_path: Path, fake_encoder) -> None:
    hit_counts: list[int] = []
    exit_codes: Counter[int] = Counter()

    @QUIET
    @given(
        query=st.text(max_size=60),
        k=st.one_of(st.integers(-5, 2000).map(str), st.text(max_size=4)),
        date_from=st.none() | DATES,
        date_to=st.none() | DATES,
        where=st.lists(st.text(max_size=15), max_size=3),
        mode=st.sampled_from(["semantic", "keyword", "hybrid", "fuzzy", ""]),
    )
    @example(query="headline number 3", k="5", date_from=None, date_to=None, where=[], mode="semantic")
    @example(query="headline things", k="2", date_from="2003-02-12", date_to="2003-02-18", where=["desk=d1"], mode="hybrid")
    @example(query="headline", k="5", date_from="2003-02-30", date_to=None, where=[], mode="keyword")  # not a date: exit 1
    @example(query="headline", k="0", date_from=None, date_to=None, where=[], mode="semantic")  # a usage error: exit 2
    def check(query: str, k: str, date_from: str | None, date_to: str | None, where: list[str], mode: str) -> None:
        TRIED["search commands"] += 1
        arguments = ["search", "-k", k, "--mode", mode, "--json"]
        arguments += ["--date-from", date_from] if date_from is not None else []
        arguments += ["--date-to", date_to] if date_to is not None else []
        for condition in where:
            arguments += ["--where", condition]
        result = CliRunner().invoke(cli, [*arguments, "--", str(collection_path), query])
        no_traceback(result)
        exit_codes[result.exit_code] += 1
        if result.exit_code == 0 and query.strip():
            answer = json.loads(result.output)
            assert len(answer["hits"]) <= int(k)
            hit_counts.append(len(answer["hits"]))

    check()
    assert any(hit_counts) and exit_codes[1] and exit_codes[2], f"searches with hits and both errors checked: {dict(exit_codes)}"
    assert contents(collection_path, fake_encoder), "searching changes nothing"


def test_remove_with_generated_ids(collection_path: Path, fake_encoder) -> None:
    removed: set[int] = set()

    @QUIET
    @given(ids=st.lists(st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(alphabet=string.printable, max_size=6)), min_size=1, max_size=4))
    @example(ids=["3"])
    @example(ids=["4", "99999"])
    @example(ids=["abc"])
    def check(ids: list[str]) -> None:
        TRIED["remove commands"] += 1
        before = contents(collection_path, fake_encoder)
        arguments = ["remove", str(collection_path)]
        for document_id in ids:
            arguments += ["--id", document_id]
        result = CliRunner().invoke(cli, arguments)
        no_traceback(result)
        after = contents(collection_path, fake_encoder)
        asked = {int(i) for i in ids if i.strip().lstrip("+-").isdigit()}
        assert set(before) - set(after) <= asked, "only the documents asked for are removed"
        removed.update(set(before) - set(after))

    check()
    assert {3, 4} <= removed, f"removals checked: {sorted(removed)}"


def test_report_inputs_tried() -> None:
    """Runs last in this module: prints the counts for the closing note."""
    print(f"\ngenerated inputs tried: {dict(TRIED)}, {sum(TRIED.values())} in all")
