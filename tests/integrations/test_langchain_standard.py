"""LangChain's own standard suite for vector stores (langchain-tests), run on the real store: SQLite, the exact backend and usearch.

The suite's async tests need pytest-asyncio (a dependency of langchain-tests). The project runs it in
strict mode, so the classes below mark their tests ``asyncio``; the suite's sync tests then carry the
mark too, and the plugin's warning about that is silenced, since the suite forbids overriding them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_core", reason="the langchain extra is not installed: pip install 'semsearch[langchain]'")
pytest.importorskip("langchain_tests", reason="langchain-tests is not installed: pip install 'semsearch[all]'")
pytest.importorskip("pytest_asyncio", reason="pytest-asyncio (a dependency of langchain-tests) is not installed")

from langchain_core.vectorstores import VectorStore  # noqa: E402
from langchain_tests.integration_tests import VectorStoreIntegrationTests  # noqa: E402

from semsearch.integrations.langchain import SemsearchVectorStore  # noqa: E402

ASYNC_MARKS = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:The test <Function .*> is marked with '@pytest.mark.asyncio' but it is not an async function"),
]


class TestSemsearchVectorStore(VectorStoreIntegrationTests):
    """The default store: a temporary directory, the exact backend."""

    pytestmark = ASYNC_MARKS

    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:  # type: ignore[override]
        store = SemsearchVectorStore(self.get_embeddings())
        try:
            yield store
        finally:
            store.close()


class TestSemsearchVectorStoreUsearch(VectorStoreIntegrationTests):
    """A store the user places and gives the default ANN backend, usearch."""

    pytestmark = ASYNC_MARKS

    @pytest.fixture
    def vectorstore(self, tmp_path) -> Iterator[VectorStore]:  # type: ignore[override]
        store = SemsearchVectorStore(self.get_embeddings(), path=tmp_path / "store.semsearch", backend="usearch")
        try:
            yield store
        finally:
            store.close()
