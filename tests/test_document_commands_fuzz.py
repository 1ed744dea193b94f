"""Generated command lines for what issue 15 added: get, list, count, export, similar, search --offset/--min-score,
operators in --where, and build --delimiter. Each ends in exit 0, or 1 with one "Error:" line, or 2 (click's usage),
never a traceback (``assert_cli``); deterministic, like every generated test here: 307 and 63 cases."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from semsearch.cli import cli
from tests.test_input_fuzz import NUMBERISH, assert_cli, fake_cli, fuzz, mostly, news_collection, news_files  # noqa: F401 - fixtures

OPERATOR = st.sampled_from(["=", "!=", ">=", "<=", ">", "<"])
FIELD_NAME = st.sampled_from(["desk", "desk.name", "nope", "", "a\"b", "$or", "\udcff"]) | st.text(max_size=5)
VALUE = st.sampled_from(["news", "2003", "2003-02-01", "1e3", "", "(", "a,b", str(2**70), "\x00", "\udcff"]) | st.text(max_size=6)
CONDITION = mostly(
    st.tuples(FIELD_NAME, OPERATOR, VALUE).map("".join),
    st.tuples(FIELD_NAME, st.sampled_from([" in (", " not in (", " IN ("]), st.lists(VALUE, max_size=3).map(",".join)).map(lambda t: f"{t[0]}{t[1]}{t[2]})"),
    st.text(max_size=10),
)
FILTERS = st.lists(st.one_of(
    st.tuples(st.just("--where"), CONDITION),
    st.tuples(st.sampled_from(["--date-from", "--date-to"]), st.sampled_from(["2003-02-19", "2003-13-01", "yesterday", ""]) | st.text(max_size=10)),
), max_size=3).map(lambda pairs: [part for pair in pairs for part in pair])


def test_document_commands_with_generated_arguments(news_collection: Path, fake_cli, tmp_path: Path) -> None:  # noqa: F811
    exit_codes: Counter[int] = Counter()
    command = st.one_of(
        st.tuples(st.just("get"), st.lists(mostly(st.integers(95, 115).map(str), NUMBERISH), min_size=1, max_size=3)),
        st.tuples(st.just("list"), st.lists(st.sampled_from(["--limit", "--offset"]).flatmap(lambda option: st.tuples(st.just(option), NUMBERISH)),
                                            max_size=2).map(lambda pairs: [part for pair in pairs for part in pair])),
        st.tuples(st.just("count"), st.just([])),
        st.tuples(st.just("export"), st.tuples(st.sampled_from(["jsonl", "csv", "parquet", "xml"]), st.booleans(), st.booleans()).map(
            lambda choice: ["--format", choice[0], *(["--vectors"] if choice[1] else []), *(["-o", str(tmp_path / f"out.{choice[0]}")] if choice[2] else [])])),
        st.tuples(st.just("similar"), st.tuples(mostly(st.integers(95, 115).map(str), NUMBERISH), NUMBERISH).map(lambda pair: [pair[0], "-k", pair[1]])),
        st.tuples(st.just("search"), st.tuples(st.text(max_size=8), NUMBERISH, NUMBERISH).map(
            lambda parts: [parts[0], "--offset", parts[1], "--min-score", parts[2]])),
    )

    @fuzz(300)
    @given(chosen=command, filters=FILTERS)
    @example(chosen=("get", ["103", "104"]), filters=[])
    @example(chosen=("get", ["99999"]), filters=[])  # exit 1: not there
    @example(chosen=("get", [str(2**63)]), filters=[])  # no document can have it: not there, not an OverflowError
    @example(chosen=("list", ["--offset", str(2**64)]), filters=[])
    @example(chosen=("similar", [str(2**70), "-k", "2"]), filters=[])
    @example(chosen=("count", []), filters=["--where", "desk.name=news"])  # a field no document has at the top: exit 1
    @example(chosen=("list", ["--limit", "x"]), filters=[])  # exit 2
    @example(chosen=("similar", ["103", "-k", "2"]), filters=[])
    @example(chosen=("export", ["--format", "parquet"]), filters=[])  # exit 1: Parquet needs a file
    @example(chosen=("search", ["storm", "--offset", "1", "--min-score", "-1"]), filters=["--where", "desk in (a,b)"])
    def check(chosen: tuple[str, list[str]], filters: list[str]) -> None:
        name, arguments = chosen
        result = CliRunner().invoke(cli, [name, str(news_collection), *arguments, *filters])
        assert_cli(result)
        exit_codes[result.exit_code] += 1

    check()
    print(f"\ndocument commands: {dict(exit_codes)}")
    assert exit_codes[0] and exit_codes[1] and exit_codes[2], dict(exit_codes)


def test_build_with_a_generated_delimiter(tmp_path: Path, fake_cli) -> None:  # noqa: F811
    files = news_files(tmp_path / "in")
    exit_codes: Counter[int] = Counter()

    @fuzz(60)
    @given(delimiter=st.sampled_from([",", ";", "\t", "|", "", ",,", '"', "\n", "\x00", "\udcff"]) | st.text(max_size=2),
           source=st.sampled_from(["news.csv", "news.txt", "news.jsonl", "broken.csv"]))
    @example(delimiter=",", source="news.csv")
    @example(delimiter=";", source="news.csv")  # one column: a warning, exit 0
    @example(delimiter="||", source="news.csv")  # exit 1
    def check(delimiter: str, source: str) -> None:
        result = CliRunner().invoke(cli, ["build", str(files[source]), "-o", str(tmp_path / "out.semsearch"), "--encoder", fake_cli.name,
                                          "--backend", "exact", "-q", "--delimiter", delimiter])
        assert_cli(result)
        exit_codes[result.exit_code] += 1

    check()
    print(f"\nbuild --delimiter: {dict(exit_codes)}")
    assert exit_codes[0] and exit_codes[1], dict(exit_codes)
