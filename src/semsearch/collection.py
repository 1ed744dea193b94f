"""Collection: the facade users touch. Build a collection directory from a corpus, open it, search it.

The CLI, the HTTP server and the Beam pipeline's last step are thin layers over this class.
"""

from __future__ import annotations

import datetime
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, overload

import numpy as np

from semsearch.backends import DEFAULT_BACKEND, VectorIndex
from semsearch.documents import Document, DocumentId, Hit
from semsearch.encoders import Encoder, check_same_encoder, encoder_for_manifest, resolve_encoder
from semsearch.encoders.parallel import DEFAULT_BATCH_SIZE
from semsearch.errors import CollectionError
from semsearch.search.access import DocumentAccess
from semsearch.search.query import SearchRequest, check_query_texts
from semsearch.search.opening import open_segments, reopen_segments
from semsearch.search.retrieval import rankings
from semsearch.search.segment_view import OpenSegment, SegmentedDocuments
from semsearch.sources.corpus import Corpus, ReadStats, read_corpus
from semsearch.sources.datasets import read_documents, resolve_source  # noqa: F401 - resolve_source: the CLI's, from here
from semsearch.sources.embedding_files import open_embedding_files
from semsearch.storage.atomic import recover_directory
from semsearch.storage.layout import read_manifest, update_lock, verify_files
from semsearch.storage.segments import id_kind
from semsearch.writing.build import BuildOptions, CorpusSource, EmbeddedSource, build_collection
from semsearch.writing.merging import due_merge, merge_segments
from semsearch.writing.update import UpdateRequest, UpdateStats, apply_update

# Opening retries when an update deletes the files of the manifest it read (see writing/update.py).
OPEN_ATTEMPTS = 3


class Collection(DocumentAccess):
    """A built collection, opened for search. Create one with ``build`` or ``open``.

    Getting at its documents (``get``, ``count``, ``iter_documents``, ``export``, ``similar``) is in
    ``search.access.DocumentAccess``."""

    def __init__(self, path: Path, manifest: dict[str, Any], segments: list[OpenSegment], encoder: Encoder) -> None:
        self.path = path
        self.manifest = manifest
        self.segments = segments
        self.store = SegmentedDocuments(segments)  # every segment's documents, less their deletions
        self.encoder = encoder
        self.build_stats: ReadStats | None = None
        self.resumed_at = 0  # documents a resumed build found already done
        self._verified = False  # whether this process checked every file's sha256 against the manifest

    @property
    def index(self) -> VectorIndex:
        """The largest segment's index: what the collection's backend is and can do (each segment has one like it)."""
        return max(self.segments, key=lambda segment: segment.entry.rows).index

    @property
    def id_kind(self) -> str:
        """"integer" or "string": the kind of every document id of this collection."""
        return id_kind(self.manifest)

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
        and ``workers`` (default: one per CPU) say how texts are embedded (see ``semsearch.encoders.parallel``).

        The workspace is ``.NAME.building`` beside ``path``. Ctrl-C or SIGTERM stop the build with
        ``BuildInterrupted`` and keep its completed batches there; ``resume`` continues the interrupted
        build of the same source, encoder and backend from its last completed batch (see ``semsearch.writing.checkpoint``).
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
        ``'PREFIX*.parquet'`` shards, without embedding again (see ``semsearch.sources.embedding_files``).

        The encoder is the one the files record, if they do; ``encoder`` must then be that one
        (it is needed for queries). Otherwise as ``build``.
        """
        files = open_embedding_files(pattern, batch_size=batch_size)
        encoder = files.encoder(encoder)
        options = BuildOptions(backend=backend, backend_params=backend_params, reduce=reduce, batch_size=batch_size, progress=progress, resume=resume)
        return cls._build(files, Path(path), encoder, options)

    @classmethod
    def _build(cls, source: EmbeddedSource, path: Path, encoder: Encoder, options: BuildOptions) -> Collection:
        resumed_at = build_collection(source, path, encoder, options)
        collection = cls.open(path, encoder=encoder, verify=False)
        collection.build_stats = source.stats
        collection.resumed_at = resumed_at
        return collection

    # -- opening --

    @classmethod
    def open(cls, path: str | Path, *, encoder: Encoder | str | None = None, verify: bool = True, mmap: bool = True,
             trust_encoder: bool = False) -> Collection:
        """Open a collection for search.

        Checks the format version, each file's size and (with ``verify``) sha256, and that
        ``encoder``, if given, is the one the collection was built with. Without ``encoder`` the
        manifest's is used, but a model the collection names by path or hub name (an encoder with
        an argument) is loaded only with ``trust_encoder``: a collection from a stranger runs no
        model it chose (see ``encoders.check_trusted``).
        """
        path = Path(path)
        if "\x00" in str(path):
            raise CollectionError(f"{str(path)!r}: a path cannot hold a NUL byte")
        recover_directory(path)
        for attempt in range(OPEN_ATTEMPTS):
            manifest = read_manifest(path)
            try:
                return cls._open_manifest(path, manifest, encoder, verify, mmap, trust_encoder)
            except CollectionError:
                # An update may have switched generations and deleted the files this manifest
                # named between reading it and opening them: read the new one and try again.
                if attempt == OPEN_ATTEMPTS - 1 or read_manifest(path) == manifest:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _open_manifest(cls, path: Path, manifest: dict[str, Any], encoder: Encoder | str | None, verify: bool, mmap: bool,
                       trust_encoder: bool = False) -> Collection:
        verify_files(path, manifest, checksums=verify)
        encoder = encoder_for_manifest(manifest["encoder"], str(path), encoder, trusted=trust_encoder)
        collection = cls(path, manifest, open_segments(path, manifest, mmap=mmap), encoder)
        collection._verified = verify
        return collection

    def refresh(self) -> bool:
        """Re-open if an update changed the collection since it was opened; True when it did."""
        if read_manifest(self.path) == self.manifest:
            return False
        self._adopt(Collection.open(self.path, encoder=self.encoder, verify=False))
        return True

    def _adopt(self, fresh: Collection) -> None:
        """Go on with ``fresh``'s manifest and segments, closing the stores of those in use."""
        self.store.close()
        self.manifest, self.segments, self.store, self._verified = fresh.manifest, fresh.segments, fresh.store, fresh._verified

    # -- updating --

    def add(self, documents: Iterable[Document] | str | Path | Corpus, *, rebuild: bool = False, batch_size: int = DEFAULT_BATCH_SIZE,
            progress: bool = False, **corpus_options: Any) -> UpdateStats:
        """Add documents whose ids are new; an id already in the collection is an error and nothing changes.

        ``documents`` is an iterable of Documents or a corpus (a path or a ``Corpus``, read with
        ``corpus_options``); a corpus without an id column is numbered after the largest id.
        ``rebuild`` rebuilds the index from the stored vectors, for backends that cannot add.
        """
        documents = read_documents(documents, corpus_options)
        return self._update(UpdateRequest(documents, replace=False, rebuild=rebuild, batch_size=batch_size, progress=progress))

    def upsert(self, documents: Iterable[Document] | str | Path | Corpus, *, rebuild: bool = False, batch_size: int = DEFAULT_BATCH_SIZE,
               progress: bool = False, **corpus_options: Any) -> UpdateStats:
        """Like ``add``, but a document whose id is in the collection already replaces the old one."""
        documents = read_documents(documents, corpus_options)
        return self._update(UpdateRequest(documents, replace=True, rebuild=rebuild, batch_size=batch_size, progress=progress))

    def remove(self, ids: Iterable[DocumentId], *, rebuild: bool = False) -> UpdateStats:
        """Remove documents by id; ids not in the collection are reported in ``not_found``."""
        return self._update(UpdateRequest(remove_ids=ids, replace=False, rebuild=rebuild))

    def _update(self, request: UpdateRequest) -> UpdateStats:
        """One update of this open collection, under the update lock (see ``semsearch.writing.update``), then the
        merge policy's merge if one is due (``semsearch.writing.merging``).

        The manifest, checksums and segments are the ones this collection opened: the update reads
        the manifest only to see whether another process changed the collection meanwhile (then
        this one is opened again first); afterwards the collection searches on, opening only the new segment.
        """
        started = time.perf_counter()
        with self._writing():
            if isinstance(request.documents, Corpus):  # a corpus without ids is numbered after the largest id
                request.documents.first_id = self.store.max_id() + 1
                request.documents.id_kind = self.id_kind
            checked = time.perf_counter() - started
            result = apply_update(self.path, self.manifest, self.encoder, request, self.segments)
            self._switched(result.manifest)
            if (due := due_merge(self.segments)) is not None:
                self._switched(merge_segments(self.path, self.manifest, self.segments, *due))
                result.stats.merged = due[1] - due[0]
                result.stats.segments = len(self.segments)
        result.stats.seconds = {"check": checked, **result.stats.seconds}
        return result.stats

    def compact(self) -> int:
        """Merge every segment into one, without the deleted documents; searches go on meanwhile (in other
        processes too), and a crash leaves the collection as it was. Returns the segments merged."""
        with self._writing():
            merged = len(self.segments)
            if merged > 1 or any(segment.has_deletions for segment in self.segments):
                self._switched(merge_segments(self.path, self.manifest, self.segments, 0, merged))
        return merged

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The update lock, this collection brought up to date first, and one-line errors for what the disk or store say."""
        try:
            recover_directory(self.path)
            with update_lock(self.path):
                if read_manifest(self.path) != self.manifest:
                    self._adopt(Collection.open(self.path, encoder=self.encoder, verify=True))
                elif not self._verified:
                    verify_files(self.path, self.manifest)
                    self._verified = True
                check_same_encoder(self.manifest["encoder"], self.encoder, str(self.path))
                yield
        except (OSError, sqlite3.DatabaseError) as error:  # disk full, a path in the way, a damaged store: nothing changed
            raise CollectionError(f"{self.path}: the update failed and the collection is as it was: {error}") from None

    def _switched(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest
        self.segments = reopen_segments(self.path, manifest, self.segments)
        self.store = SegmentedDocuments(self.segments)

    # -- searching --

    @overload
    def search(self, query: str, k: int = 10, *, mode: str = "semantic", date_from: datetime.date | str | None = None,
               date_to: datetime.date | str | None = None, where: dict[str, Any] | None = None,
               offset: int = 0, min_score: float | None = None, **search_params: Any) -> list[Hit]: ...
    @overload
    def search(self, query: Sequence[str], k: int = 10, *, mode: str = "semantic", date_from: datetime.date | str | None = None,
               date_to: datetime.date | str | None = None, where: dict[str, Any] | None = None,
               offset: int = 0, min_score: float | None = None, **search_params: Any) -> list[list[Hit]]: ...

    def search(self, query: str | Sequence[str], k: int = 10, *, mode: str = "semantic", date_from: datetime.date | str | None = None,
               date_to: datetime.date | str | None = None, where: dict[str, Any] | None = None,
               offset: int = 0, min_score: float | None = None, **search_params: Any) -> list[Hit] | list[list[Hit]]:
        """The k documents nearest in meaning to a query, best first; a list of queries gives a list of lists.

        ``mode``: "semantic" (cosine similarity), "keyword" (SQLite FTS5 BM25, score = -bm25) or
        "hybrid" (both fused by reciprocal rank, score = the fused sum). ``date_from`` and
        ``date_to`` (YYYY-MM-DD, inclusive) and ``where`` (metadata conditions, see ``semsearch.filters``) filter the
        documents; a filtered search still returns k hits when k documents match. ``offset`` skips
        that many hits first (the next page); ``min_score`` drops hits scored below it.
        """
        request = SearchRequest.of(k, mode=mode, date_from=date_from, date_to=date_to, where=where, offset=offset, min_score=min_score,
                                   **search_params)
        results = self.search_request([query] if isinstance(query, str) else list(query), request)
        return results[0] if isinstance(query, str) else results

    def search_request(self, queries: list[str], request: SearchRequest, query_vectors: np.ndarray | None = None) -> list[list[Hit]]:
        """The hits of each query for a request made (and checked) already, as the CLI and the server make them
        (``query_vectors``: the queries' vectors, when they are not texts to encode)."""
        if not queries:
            return []
        check_query_texts(queries)
        if request.filter is not None:
            self.store.check_fields(request.filter)
        try:
            found = rankings(request, queries, self.encoder, self.segments, query_vectors, self.store.semantic_units(request.filter))
            documents = self.store.by_keys({key for ranking in found for key, _ in ranking})
        except sqlite3.ProgrammingError:  # semsearch's own mistake, not the store's
            raise
        except sqlite3.DatabaseError as error:  # a store that opened but is damaged further in
            raise CollectionError(f"{self.path}: the document store is damaged: {error}") from None
        return [
            [
                Hit(id=document.id, text=document.text, date=document.date, score=float(score), meta=document.meta)
                for key, score in ranking
                if (document := documents.get(key)) is not None
            ]
            for ranking in found
        ]

    def vectors(self, ids: Iterable[DocumentId]) -> np.ndarray:
        """The stored vectors of documents (by id, each in the collection), as the indexes compare them."""
        return self.vectors_of_ids([value.item() if isinstance(value, np.generic) else value for value in ids])

    def info(self) -> dict[str, Any]:
        """The manifest's facts plus the size on disk, for ``semsearch info`` and ``GET /info``."""
        facts = {key: value for key, value in self.manifest.items() if key not in ("files", "segments")}
        facts["path"] = str(self.path)
        facts["size_bytes"] = sum(entry["size"] for entry in self.manifest["files"].values())
        facts["files"] = sorted(self.manifest["files"])
        facts["segments"] = self.store.describe()
        facts["ids"] = self.id_kind
        # A few of its texts chosen at build time, for the search page; from a stranger's manifest, only short text.
        examples = self.manifest.get("examples")
        facts["examples"] = [text[:200] for text in examples[:5] if isinstance(text, str)] if isinstance(examples, list) else []
        return facts

    def __len__(self) -> int:
        return int(self.manifest["count"])

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
