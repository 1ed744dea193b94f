"""An open collection's segments, read as one: each segment less its deletions, and all of them by key and by id.

``OpenSegment`` is one segment as a search sees it: its index, its store, the documents its
index cannot find, and its deleted keys taken out of everything it answers. ``SegmentedDocuments``
is every segment together, what the document commands and a search's last step (key to
document) read: keys are routed to the one segment whose range holds them, ids are looked up
newest segment first (an upserted document lives in the newest segment that has it).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends import VectorIndex, create_index
from semsearch.backends.reachability import Orphans
from semsearch.search.filter_memory import FilterMemory
from semsearch.documents import Document, DocumentId
from semsearch.errors import CollectionError
from semsearch.filters import Filter, FilterError
from semsearch.storage.layout import VECTORS_FILE
from semsearch.storage.segments import SegmentEntry
from semsearch.storage.store import DocumentStore
from semsearch.storage.vector_file import StoredVectors

# Rows read at once when documents are listed or exported.
PAGE_SIZE = 1_000


@dataclass(eq=False)  # compared by identity: its fields hold arrays and open files
class OpenSegment:
    """One segment, open for search: what ``search.retrieval`` asks of a store, with the deleted keys left out."""

    entry: SegmentEntry
    directory: Path
    store: DocumentStore
    index: VectorIndex
    orphans: Orphans | None
    deleted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _stored_vectors: StoredVectors | None = None

    def __post_init__(self) -> None:
        self.deleted_keys = frozenset(self.deleted.tolist())
        self.filters = FilterMemory()

    @property
    def has_deletions(self) -> bool:
        return bool(self.deleted_keys)

    @property
    def is_small(self) -> bool:
        """Searched exactly because it is small (not the collection's backend, so its search parameters do not apply)."""
        return self.entry.index == "exact"

    def __len__(self) -> int:
        return self.entry.live

    def vectors(self, keys: np.ndarray) -> np.ndarray:
        """The stored vectors of keys, as the index compares them: from the index, or from the segment's vectors.npy."""
        if self.index.keeps_vectors:
            return self.index.vectors(np.asarray(keys, dtype=np.int64))
        if self._stored_vectors is None:
            self._stored_vectors = StoredVectors(self.directory / VECTORS_FILE)
        return self._stored_vectors.vectors(keys)

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """The stored vectors of keys in the number type they are kept in, for an exact scan (``vectors`` as float32)."""
        if self.index.keeps_vectors:
            return self.index.stored_rows(np.asarray(keys, dtype=np.int64))
        return self.vectors(keys)

    def count_matching(self, where: Filter | None, limit: int | None = None) -> int:
        """The live documents the filter matches; with ``limit``, at most ``limit`` (counting stops about there).
        Without a filter, the manifest's count: an unfiltered search of a segment with deletions asks SQLite nothing.
        A search's first question about its filter, so where a filter's use is counted (``filter_memory``)."""
        if where is None:
            return self.entry.live if limit is None else min(limit, self.entry.live)
        remembered = self.filters.use(where, lambda: self._matching_keys(where))
        if remembered is not None:
            return remembered.count if limit is None else min(limit, remembered.count)
        if not self.deleted_keys:
            return self.store.count_matching(where, limit)
        counted = self.store.count_matching(where, None if limit is None else limit + len(self.deleted_keys))
        if limit is not None and counted >= limit + len(self.deleted_keys):
            return limit
        gone = len(self.store.filter_keys(self.deleted_keys, where))
        return counted - gone if limit is None else min(limit, counted - gone)

    def sampled_share(self, where: Filter | None, samples: int) -> float:
        """The share of the segment's documents the filter matches, estimated from a fixed sample of keys
        (exact for a remembered filter)."""
        if where is None:
            return self.entry.live / max(1, self.entry.rows)
        remembered = self.filters.get(where)
        if remembered is not None:
            return remembered.count / max(1, self.entry.rows)
        return self.store.sampled_share(where, samples)

    def matching_keys(self, where: Filter | None) -> np.ndarray:
        remembered = self.filters.get(where)
        return remembered.keys() if remembered is not None else self._matching_keys(where)

    def _matching_keys(self, where: Filter | None) -> np.ndarray:
        keys = self.store.matching_keys(where)
        return keys[~np.isin(keys, self.deleted)] if self.deleted_keys else keys

    def filter_keys(self, keys: Iterable[int], where: Filter | None) -> set[int]:
        if where is None and self.deleted_keys:  # the segment's own index's keys, less its deletions: no SQLite
            return {int(key) for key in keys} - self.deleted_keys
        remembered = self.filters.get(where)
        if remembered is not None:
            return remembered.among(keys)
        kept = self.store.filter_keys(keys, where)
        return kept - self.deleted_keys if self.deleted_keys else kept

    def keyword_search(self, text: str, k: int, where: Filter | None) -> list[tuple[int, float]]:
        """BM25's k best, deleted documents left out (asked for as many more as there are deletions)."""
        found = self.store.keyword_search(text, k + len(self.deleted_keys), where)
        return [(key, score) for key, score in found if key not in self.deleted_keys][:k]

    def close(self) -> None:
        self.store.close()


@dataclass
class ExactGroup:
    """The small segments' live vectors in one exact index, for unfiltered semantic search: one matrix product for
    all of them instead of one search each (what makes ten segments cost about what one does)."""

    index: VectorIndex
    has_deletions: bool = False
    orphans: Orphans | None = None
    is_small: bool = True

    @classmethod
    def of(cls, segments: list[OpenSegment], dim: int) -> ExactGroup:
        index = create_index("exact", dim)
        for segment in segments:
            keys = segment.store.keys()
            if segment.deleted_keys:
                keys = keys[~np.isin(keys, segment.deleted)]
            if len(keys):
                try:
                    index.add(keys, segment.vectors(keys))
                except ValueError as error:  # its index does not hold what its store does
                    raise CollectionError(f"{segment.directory}: segment {segment.entry.name} is damaged: {error}") from None
        return cls(index)

    def vectors(self, keys: np.ndarray) -> np.ndarray:
        return self.index.vectors(keys)

    def rows(self, keys: np.ndarray) -> np.ndarray:
        return self.index.vectors(keys)


class SegmentedDocuments:
    """Every segment's documents as one collection's: by key, by id, counted, listed, their fields."""

    def __init__(self, segments: list[OpenSegment]) -> None:
        self.segments = segments
        # Segments in key order, for routing a key to the one whose range holds it.
        self._ordered = sorted((segment for segment in segments if segment.entry.rows), key=lambda segment: segment.entry.first_key)
        self._starts = [segment.entry.first_key for segment in self._ordered]
        self._known_fields: set[str] = set()
        self._exact_group: ExactGroup | None = None

    def semantic_units(self, where: Filter | None) -> list[OpenSegment | ExactGroup]:
        """What an unfiltered semantic search searches: the segments with an index of their own, and the small exact
        ones as one group (made on the first search, kept until the next update); with a filter, every segment."""
        small = [segment for segment in self.segments if segment.entry.index == "exact" and segment.orphans is None]
        if where is not None or len(small) < 2:
            return list(self.segments)
        if self._exact_group is None:
            self._exact_group = ExactGroup.of(small, small[0].index.dim)
        return [segment for segment in self.segments if segment not in small] + [self._exact_group]

    def segment_of(self, key: int) -> OpenSegment | None:
        position = bisect.bisect_right(self._starts, key) - 1
        if position < 0 or not self._ordered[position].entry.holds(key):
            return None
        return self._ordered[position]

    def by_keys(self, keys: Iterable[int]) -> dict[int, Document]:
        """Key to document for the live ones of ``keys``."""
        grouped: dict[int, list[int]] = {}
        for key in keys:
            segment = self.segment_of(int(key))
            if segment is not None and int(key) not in segment.deleted_keys:
                grouped.setdefault(id(segment), []).append(int(key))
        found: dict[int, Document] = {}
        for segment in self._ordered:
            if id(segment) in grouped:
                found.update(segment.store.get(grouped[id(segment)]))
        return found

    def live_keys(self, ids: Iterable[DocumentId]) -> dict[DocumentId, tuple[OpenSegment, int]]:
        """Document id to (segment, key) for those of ``ids`` that are live, newest segment first."""
        wanted = list(dict.fromkeys(ids))
        found: dict[DocumentId, tuple[OpenSegment, int]] = {}
        for segment in reversed(self.segments):
            if not wanted:
                break
            for document_id, key in segment.store.keys_of(wanted).items():
                if key not in segment.deleted_keys and document_id not in found:
                    found[document_id] = (segment, key)
            wanted = [document_id for document_id in wanted if document_id not in found]
        return found

    def by_ids(self, ids: Iterable[DocumentId]) -> dict[DocumentId, Document]:
        located = self.live_keys(ids)
        documents = {}
        for document_id, (segment, key) in located.items():
            document = segment.store.get([key]).get(key)
            if document is not None:
                documents[document_id] = document
        return documents

    # The single store's names, which callers of version 1 used: id to document, a count, the ids there are.
    def get(self, ids: Iterable[DocumentId]) -> dict[DocumentId, Document]:
        return self.by_ids(ids)

    def count_matching(self, where: Filter | None) -> int:
        return self.count(where)

    def existing(self, ids: Iterable[DocumentId]) -> list[DocumentId]:
        return sorted(self.live_keys(ids), key=lambda value: (isinstance(value, str), value))

    def ids(self) -> np.ndarray | list[DocumentId]:
        return self.matching_ids(None)

    def matching_ids(self, where: Filter | None) -> np.ndarray | list[DocumentId]:
        """The live documents' ids the filter matches, ascending (an array of integers, or a list of strings)."""
        found = sorted(document_id for segment in self.segments for key, document_id in segment.store.key_ids(where)
                       if key not in segment.deleted_keys)
        return found if found and isinstance(found[0], str) else np.array(found, dtype=np.int64)

    def count(self, where: Filter | None = None) -> int:
        return sum(segment.count_matching(where) for segment in self.segments)

    def documents(self, where: Filter | None = None, *, limit: int | None = None, offset: int = 0) -> Iterator[Document]:
        """The live documents in key order (the order they were added), a page at a time, after skipping ``offset``."""
        remaining = limit
        for segment in self._ordered:
            if remaining is not None and remaining <= 0:
                return
            if offset:
                here = segment.count_matching(where)
                if offset >= here:
                    offset -= here
                    continue
            after: int | None = None
            while remaining is None or remaining > 0:
                page = segment.store.page(where, after, PAGE_SIZE)
                for key, document in page:
                    if key in segment.deleted_keys:
                        continue
                    if offset:
                        offset -= 1
                        continue
                    yield document
                    if remaining is not None:
                        remaining -= 1
                        if remaining <= 0:
                            return
                if len(page) < PAGE_SIZE:
                    break
                after = page[-1][0]

    def metadata_fields(self, where: Filter | None = None) -> list[str]:
        return sorted({name for segment in self.segments for name in segment.store.metadata_fields(where)})

    def check_fields(self, where: Filter) -> None:
        """A filter naming a metadata field that no document has is a mistake (a typo, most often):
        a FilterError naming the fields there are, rather than silently no hits."""
        for name in where.fields():
            if name in self._known_fields:
                continue
            if any(segment.store.has_field(name) for segment in self.segments):
                self._known_fields.add(name)
                continue
            present = sorted({found for segment in self.segments for found in segment.store.some_fields()})[:50]
            there = f"the fields are {', '.join(present)}" if present else "the documents have no metadata fields"
            raise FilterError(f"no document has a metadata field {name!r}; {there}")

    def max_id(self) -> int:
        """The largest integer id any segment holds, -1 if none: documents without ids are numbered after it."""
        return max((segment.store.max_id() for segment in self.segments), default=-1)

    def __len__(self) -> int:
        return sum(len(segment) for segment in self.segments)

    def close(self) -> None:
        for segment in self.segments:
            segment.close()

    def describe(self) -> list[dict[str, Any]]:
        """Each segment's name, documents and deletions, for ``info``."""
        return [{"name": s.entry.name, "documents": s.entry.live, "deleted": s.entry.deleted_count} for s in self.segments]
