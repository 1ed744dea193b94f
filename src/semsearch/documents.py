"""The two records that flow through semsearch: a Document in, a Hit out."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any


# Ids are SQLite INTEGERs and the indexes' non-negative 64-bit keys (-1 means "nothing found").
MAX_DOCUMENT_ID = 2**63 - 1


def is_document_id(value: int) -> bool:
    return 0 <= value <= MAX_DOCUMENT_ID


@dataclass(frozen=True)
class Document:
    """One text of a corpus, with the id it is known by in a collection."""

    id: int
    text: str
    date: datetime.date | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One search result: a document and its cosine similarity to the query (1 is identical)."""

    id: int
    text: str
    date: datetime.date | None
    score: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The shape the CLI's --json and the HTTP API share."""
        record: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "date": self.date.isoformat() if self.date else None,
            "score": round(self.score, 6),
        }
        if self.meta:
            record["meta"] = self.meta
        return record
