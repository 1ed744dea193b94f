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
