"""A real `semsearch serve` process on 127.0.0.1 serving a small real collection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed: pip install 'semsearch[server]'")
pytest.importorskip("uvicorn", reason="the server extra is not installed: pip install 'semsearch[server]'")

from semsearch.server.launch import RunningServer, start_server, stop_server  # noqa: E402


@pytest.fixture(scope="session")
def server(small_real_collection, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One worker serving the 3,000-headline real collection."""
    running = start_server(small_real_collection.path, tmp_path_factory.mktemp("server") / "server.log")
    yield running
    stop_server(running)


@pytest.fixture
def tiny_collection_path(tmp_path, real_encoder, sample_csv):
    """20 real headlines, built for one test, which may change them."""
    from semsearch import Collection

    path = tmp_path / "tiny.semsearch"
    Collection.build(sample_csv, path, encoder=real_encoder, limit=20).close()
    return path


DESKS = ("sport", "business", "local")


@pytest.fixture(scope="session")
def meta_collection_path(tmp_path_factory: pytest.TempPathFactory, real_encoder, sample_csv):
    """60 real headlines with metadata: desk (sport, business, local in turn), year (2003 or 2004), and the last
    with twenty fields f0..f19 besides, for filters at the limits."""
    import json

    from semsearch import Collection
    from semsearch.sources.corpus import read_corpus

    headlines = [document.text for _, document in zip(range(60), read_corpus(sample_csv))]
    rows = [{"id": number, "text": text, "desk": DESKS[number % 3], "year": 2003 + number % 2} for number, text in enumerate(headlines)]
    rows[-1].update({f"f{i}": i for i in range(20)})
    directory = tmp_path_factory.mktemp("collections")
    corpus = directory / "meta.jsonl"
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows))
    path = directory / "meta.semsearch"
    Collection.build(corpus, path, encoder=real_encoder).close()
    return path


@pytest.fixture(scope="session")
def meta_server(meta_collection_path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(meta_collection_path, tmp_path_factory.mktemp("meta-server") / "server.log")
    yield running
    stop_server(running)
