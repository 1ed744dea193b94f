"""Collection: the facade users touch. Build a collection directory from a corpus, open it, search it.

The CLI, the HTTP server and the Beam pipeline's last step are thin layers over this class.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from semsearch import __version__
from semsearch.atomic import recover_directory, replace_directory
from semsearch.backends import DEFAULT_BACKEND, VectorIndex
from semsearch.corpus import Corpus, ReadStats, read_corpus
from semsearch.datasets import DATASETS, bundled_path
from semsearch.documents import Document, Hit
from semsearch.building import CorpusSource, EmbeddedSource, build_plan, write_collection_files
from semsearch.checkpoint import BuildWorkspace
from semsearch.embedding import DEFAULT_BATCH_SIZE
from semsearch.embedding_files import open_embedding_files
from semsearch.encoders import DEFAULT_ENCODER, Encoder, encoder_for_manifest, get_encoder
from semsearch.errors import CollectionError, SemsearchError
from semsearch.manifest import DOCUMENTS_FILE, FORMAT_VERSION, MANIFEST, VECTORS_FILE, describe_files, read_manifest, verify_files, write_manifest
from semsearch.filters import Filter
from semsearch.reduce import new_index, open_index, reducer_spec
from semsearch.retrieval import FUSION_DEPTH, MODES, Ranking, fuse, keyword_rankings, semantic_rankings
from semsearch.store import DocumentStore
from semsearch.updates import UpdateRequest, UpdateStats, apply_update, data_directory
from semsearch.vector_file import StoredVectors

# Opening retries when an update deletes the files of the manifest it read (see updates.py).
OPEN_ATTEMPTS = 3


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def resolve_source(source: str | Path) -> Path:
    """A corpus path, or the name of a bundled data set such as ``abcnews-sample``."""
    path = Path(source)
    if not path.exists() and str(source) in DATASETS:
        return bundled_path(str(source))
    return path


def _read_documents(documents: Iterable[Document] | str | Path | Corpus, corpus_options: dict[str, Any]) -> Iterable[Document]:
    """Documents to add as given, or read from a corpus path (or a bundled data set's name) with ``corpus_options``."""
    if isinstance(documents, (str, Path)):
        return read_corpus(resolve_source(documents), **corpus_options)
    return documents


def resolve_encoder(encoder: Encoder | str | None) -> Encoder:
    if isinstance(encoder, Encoder):
        return encoder
    return get_encoder(encoder or DEFAULT_ENCODER)


@dataclass(frozen=True)
class BuildOptions:
    """How a build indexes and writes, whatever its vectors come from: what ``Collection.build`` and
    ``Collection.build_from_embeddings`` share, handed whole to ``Collection._build`` so that the
    list is passed along in one place. No defaults here: the public signatures are where users see them."""

    backend: str
    backend_params: dict[str, Any] | None
    reduce: str | None
    batch_size: int
    progress: bool
    resume: bool


class Collection:
    """A built collection, opened for search. Create one with ``build`` or ``open``."""

    def __init__(self, path: Path, manifest: dict[str, Any], store: DocumentStore, index: VectorIndex, encoder: Encoder) -> None:
        self.path = path
        self.manifest = manifest
        self.store = store
        self.index = index
        self.encoder = encoder
        self.build_stats: ReadStats | None = None
        self.resumed_at = 0  # documents a resumed build found already done
        self._stored_vectors: StoredVectors | None = None

    # -- building --

    @classmethod
    def build(
        cls,
        source: str | Path | Corpus,
        path: str | Path,
        *,
        encoder: Encoder | str | None = None,
        backend: str = DEFAULT_BACKEND,
        backend_params: dict[str, Any] | None = None,
        reduce: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = False,
        parallel: str | None = None,
        workers: int | None = None,
        resume: bool = False,
        **corpus_options: Any,
    ) -> Collection:
        """Read ``source``, embed every text, index it and write the collection directory at ``path``.

        Everything is written into a temporary sibling directory that replaces ``path`` only
        when complete: a failed or interrupted build leaves an older collection at ``path`` as it was.
        ``corpus_options`` go to ``read_corpus`` (text_field, date_field, id_field, format,
        skip_bad_rows, limit). ``reduce`` (``pca:128``, ``random-projection:64``) indexes reduced
        vectors and keeps the full ones in vectors.npy. ``parallel`` (processes, threads or serial)
        and ``workers`` (default: one per CPU) say how texts are embedded (see ``semsearch.embedding``).

        The workspace is ``.NAME.building`` beside ``path``. Ctrl-C or SIGTERM stop the build with
        ``BuildInterrupted`` and keep its completed batches there; ``resume`` continues the interrupted
        build of the same source, encoder and backend from its last completed batch (see ``semsearch.checkpoint``).
        """
        corpus = source if isinstance(source, Corpus) else read_corpus(resolve_source(source), **corpus_options)
        encoder = resolve_encoder(encoder)
        embedded = CorpusSource(corpus, encoder, batch_size=batch_size, parallel=parallel, workers=workers)
        options = BuildOptions(backend=backend, backend_params=backend_params, reduce=reduce, batch_size=batch_size, progress=progress, resume=resume)
        return cls._build(embedded, Path(path), encoder, options)

    @classmethod
    def build_from_embeddings(
        cls,
        pattern: str | Path,
        path: str | Path,
        *,
        encoder: Encoder | str | None = None,
        backend: str = DEFAULT_BACKEND,
        backend_params: dict[str, Any] | None = None,
        reduce: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = False,
        resume: bool = False,
    ) -> Collection:
        """Build a collection from vectors embedded elsewhere, e.g. ``semsearch beam-embed``'s
        ``'PREFIX*.parquet'`` shards, without embedding again (see ``semsearch.embedding_files``).

        The encoder is the one the files record, if they do; ``encoder`` must then be that one
        (it is needed for queries). Otherwise as ``build``.
        """
        files = open_embedding_files(pattern, batch_size=batch_size)
        encoder = files.encoder(encoder)
        options = BuildOptions(backend=backend, backend_params=backend_params, reduce=reduce, batch_size=batch_size, progress=progress, resume=resume)
        return cls._build(files, Path(path), encoder, options)

    @classmethod
    def _build(cls, source: EmbeddedSource, path: Path, encoder: Encoder, options: BuildOptions) -> Collection:
        if path.exists() and not (path / MANIFEST).is_file() and (not path.is_dir() or any(path.iterdir())):
            raise SemsearchError(f"{path} exists and is not a semsearch collection; not overwriting it")
        index = new_index(options.backend, encoder.dim, options.backend_params, options.reduce)
        workspace = BuildWorkspace(path, build_plan(source, encoder, index, reducer_spec(index))).open(resume=options.resume)
        try:
            count = write_collection_files(workspace, source, index, encoder.dim, batch_size=options.batch_size, progress=options.progress)
            workspace.remove_work_files()
            if count == 0:
                raise SemsearchError(f"{source.description}: no documents to index")
            created = _now()
            manifest = {
                "format_version": FORMAT_VERSION,
                "semsearch_version": __version__,
                "encoder": encoder.spec(),
                "reducer": reducer_spec(index),
                "metric": "cosine",
                "backend": {"name": index.name, "params": index.params},
                "count": count,
                "source": source.description,
                "created": created,
                "updated": created,
                "files": describe_files(workspace.path, [p.name for p in workspace.path.iterdir()]),
            }
            write_manifest(workspace.path, manifest)
            replace_directory(workspace.path, path)
            workspace.release()
        except KeyboardInterrupt:  # kept for --resume
            workspace.release()
            raise
        except BaseException:
            workspace.discard()
            raise
        collection = cls.open(path, encoder=encoder, verify=False)
        collection.build_stats = source.stats
        collection.resumed_at = workspace.resumed_at
        return collection

    # -- opening --

    @classmethod
    def open(cls, path: str | Path, *, encoder: Encoder | str | None = None, verify: bool = True, mmap: bool = True) -> Collection:
        """Open a collection for search.

        Checks the format version, each file's size and (with ``verify``) sha256, and that
        ``encoder``, if given, is the one the collection was built with.
        """
        path = Path(path)
        recover_directory(path)
        for attempt in range(OPEN_ATTEMPTS):
            manifest = read_manifest(path)
            try:
                return cls._open_manifest(path, manifest, encoder, verify, mmap)
            except CollectionError:
                # An update may have switched generations and deleted the files this manifest
                # named between reading it and opening them: read the new one and try again.
                if attempt == OPEN_ATTEMPTS - 1 or read_manifest(path) == manifest:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _open_manifest(cls, path: Path, manifest: dict[str, Any], encoder: Encoder | str | None, verify: bool, mmap: bool) -> Collection:
        verify_files(path, manifest, checksums=verify)
        built_with = manifest["encoder"]
        encoder = encoder_for_manifest(built_with, str(path), encoder)
        backend = manifest["backend"]
        data = data_directory(path, manifest)
        try:
            index = open_index(data, manifest, mmap=mmap)
        except SemsearchError:
            raise
        except Exception as error:  # each library has its own error for a damaged file
            raise CollectionError(f"{path}: the {backend['name']} index cannot be opened: {error}") from None
        store = DocumentStore.open(data / DOCUMENTS_FILE)
        return cls(path, manifest, store, index, encoder)

    def refresh(self) -> bool:
        """Re-open if an update changed the collection since it was opened; True when it did."""
        if read_manifest(self.path) == self.manifest:
            return False
        fresh = Collection.open(self.path, encoder=self.encoder, verify=False)
        self.store.close()
        self.manifest, self.store, self.index = fresh.manifest, fresh.store, fresh.index
        self._stored_vectors = None
        return True

    # -- updating --

    def add(self, documents: Iterable[Document] | str | Path | Corpus, *, rebuild: bool = False, batch_size: int = DEFAULT_BATCH_SIZE,
            progress: bool = False, **corpus_options: Any) -> UpdateStats:
        """Add documents whose ids are new; an id already in the collection is an error and nothing changes.

        ``documents`` is an iterable of Documents or a corpus (a path or a ``Corpus``, read with
        ``corpus_options``); a corpus without an id column is numbered after the largest id.
        ``rebuild`` rebuilds the index from the stored vectors, for backends that cannot add.
        """
        documents = _read_documents(documents, corpus_options)
        return self._update(UpdateRequest(documents, replace=False, rebuild=rebuild, batch_size=batch_size, progress=progress))

    def upsert(self, documents: Iterable[Document] | str | Path | Corpus, *, rebuild: bool = False, batch_size: int = DEFAULT_BATCH_SIZE,
               progress: bool = False, **corpus_options: Any) -> UpdateStats:
        """Like ``add``, but a document whose id is in the collection already replaces the old one."""
        documents = _read_documents(documents, corpus_options)
        return self._update(UpdateRequest(documents, replace=True, rebuild=rebuild, batch_size=batch_size, progress=progress))

    def remove(self, ids: Iterable[int], *, rebuild: bool = False) -> UpdateStats:
        """Remove documents by id; ids not in the collection are reported in ``not_found``."""
        return self._update(UpdateRequest(remove_ids=ids, replace=False, rebuild=rebuild))

    def _update(self, request: UpdateRequest) -> UpdateStats:
        stats = apply_update(self.path, self.encoder, request)
        self.refresh()
        return stats

    # -- searching --

    @overload
    def search(self, query: str, k: int = 10, *, mode: str = "semantic", date_from: datetime.date | str | None = None,
               date_to: datetime.date | str | None = None, where: dict[str, Any] | None = None, **search_params: Any) -> list[Hit]: ...
    @overload
    def search(self, query: Sequence[str], k: int = 10, *, mode: str = "semantic", date_from: datetime.date | str | None = None,
               date_to: datetime.date | str | None = None, where: dict[str, Any] | None = None, **search_params: Any) -> list[list[Hit]]: ...

    def search(self, query: str | Sequence[str], k: int = 10, *, mode: str = "semantic", date_from: datetime.date | str | None = None,
               date_to: datetime.date | str | None = None, where: dict[str, Any] | None = None, **search_params: Any) -> list[Hit] | list[list[Hit]]:
        """The k documents nearest in meaning to a query, best first; a list of queries gives a list of lists.

        ``mode``: "semantic" (cosine similarity), "keyword" (SQLite FTS5 BM25, score = -bm25) or
        "hybrid" (both fused by reciprocal rank, score = the fused sum). ``date_from`` and
        ``date_to`` (YYYY-MM-DD, inclusive) and ``where`` (metadata field -> value) filter the
        documents; a filtered search still returns k hits when k documents match.
        """
        queries = [query] if isinstance(query, str) else list(query)
        if k < 1:
            raise SemsearchError(f"k must be at least 1, got {k}")
        if mode not in MODES:
            raise SemsearchError(f"no search mode {mode!r}; choose one of {', '.join(MODES)}")
        wanted = Filter.of(date_from, date_to, where)
        if not queries:
            return []
        rankings = self._rankings(queries, k, mode, wanted, search_params)
        documents = self.store.get({document_id for ranking in rankings for document_id, _ in ranking})
        results = [
            [
                Hit(id=document.id, text=document.text, date=document.date, score=float(score), meta=document.meta)
                for document_id, score in ranking
                if (document := documents.get(document_id)) is not None
            ]
            for ranking in rankings
        ]
        return results[0] if isinstance(query, str) else results

    def _rankings(self, queries: list[str], k: int, mode: str, wanted: Filter | None, search_params: dict[str, Any]) -> list[Ranking]:
        depth = k if mode != "hybrid" else max(k, FUSION_DEPTH)
        semantic: list[Ranking] = []
        if mode != "keyword":
            try:
                semantic = semantic_rankings(self.index, self.store, self.vectors, self.encoder.encode(queries), depth, wanted, search_params)
            except ValueError as error:
                raise SemsearchError(str(error)) from None
        if mode == "semantic":
            return semantic
        keyword = keyword_rankings(self.store, queries, depth, wanted)
        if mode == "keyword":
            return keyword
        return [fuse([by_meaning, by_words], k) for by_meaning, by_words in zip(semantic, keyword)]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of documents, as the index compares them: from the index, or from vectors.npy."""
        if self.index.keeps_vectors:
            return self.index.vectors(np.asarray(ids, dtype=np.int64))
        if self._stored_vectors is None:
            self._stored_vectors = StoredVectors(data_directory(self.path, self.manifest) / VECTORS_FILE)
        return self._stored_vectors.vectors(ids)

    def info(self) -> dict[str, Any]:
        """The manifest's facts plus the size on disk, for ``semsearch info`` and ``GET /info``."""
        facts = {key: value for key, value in self.manifest.items() if key != "files"}
        facts["path"] = str(self.path)
        facts["size_bytes"] = sum(entry["size"] for entry in self.manifest["files"].values())
        facts["files"] = sorted(self.manifest["files"])
        return facts

    def __len__(self) -> int:
        return int(self.manifest["count"])

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
