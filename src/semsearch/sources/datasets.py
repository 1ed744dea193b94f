"""Data sets semsearch knows by name: the bundled ABC sample, and the full ABC set to download.

The download is the only network access semsearch ever makes, and only when asked.
It resumes a partial file and checks what arrived before putting it in place.
"""

from __future__ import annotations

import csv
import http.client
import io
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from semsearch.documents import Document
from semsearch.errors import SemsearchError
from semsearch.sources.corpus import Corpus, read_corpus
from semsearch.sources.values import shown


@dataclass(frozen=True)
class Dataset:
    """A named corpus: either shipped in the package or fetched from ``url``."""

    name: str
    description: str
    licence: str
    rows: int | None
    header: tuple[str, ...]
    bundled_file: str | None = None
    url: str | None = None
    min_rows: int = 0
    min_bytes: int = 0

    @property
    def location(self) -> str:
        return "bundled" if self.bundled_file else "download"


ABC_CITATION = "ABC news headlines, compiled by Rohit Kulkarni, Harvard Dataverse doi:10.7910/DVN/SYBGZL"

DATASETS: dict[str, Dataset] = {
    "abcnews-sample": Dataset(
        name="abcnews-sample",
        description=f"21,293 real headlines, 19 Feb to 2 Jun 2003 ({ABC_CITATION})",
        licence="CC0-1.0",
        rows=21_293,
        header=("publish_date", "headline_text"),
        bundled_file="abcnews-sample.csv.gz",
    ),
    "abcnews": Dataset(
        name="abcnews",
        description=f"A Million News Headlines, 2003 onward, about 55 MB ({ABC_CITATION})",
        licence="CC0-1.0",
        rows=None,
        header=("publish_date", "headline_text"),
        url="https://dataverse.harvard.edu/api/access/datafile/3450625?format=tab&gbrecs=true",
        min_rows=1_000_000,
        min_bytes=40_000_000,
    ),
}


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise SemsearchError(f"no data set named {name!r}; known: {', '.join(DATASETS)}") from None


def bundled_path(name: str) -> Path:
    """The file of a bundled data set inside the installed package."""
    dataset = get_dataset(name)
    if dataset.bundled_file is None:
        raise SemsearchError(f"{name!r} is not bundled; fetch it with: semsearch download {name} DEST")
    return Path(str(resources.files("semsearch") / "data" / dataset.bundled_file))


ProgressCallback = Callable[[int, int | None], None]


def download(
    name: str,
    destination: str | Path,
    *,
    url: str | None = None,
    dataset: Dataset | None = None,
    progress: ProgressCallback | None = None,
    chunk_size: int = 1 << 16,
) -> Path:
    """Fetch a data set to ``destination``, resuming ``destination.part`` if an earlier try left one.

    The file is renamed into place only after its size, header and row count check out;
    a failed check leaves the ``.part`` file for inspection and says what was wrong.
    """
    dataset = dataset or get_dataset(name)
    source = url or dataset.url
    if source is None:
        raise SemsearchError(f"{dataset.name!r} is bundled with semsearch and needs no download")
    destination = Path(destination)
    if destination.is_dir():
        destination = destination / f"{dataset.name}.tsv"
    partial = destination.with_name(destination.name + ".part")
    have = partial.stat().st_size if partial.exists() else 0

    try:
        request = urllib.request.Request(source, headers={"Range": f"bytes={have}-"} if have else {})
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the partial file is already complete
            response = None
        else:
            raise SemsearchError(f"download of {source} failed: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise SemsearchError(f"download of {source} failed: {getattr(error, 'reason', error)}") from None
    except ValueError as error:  # not a URL: "unknown url type"
        raise SemsearchError(f"download of {source!r} failed: {error}") from None

    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None and length.strip().isdigit() else None
            with partial.open("ab" if resumed else "wb") as output:
                try:
                    while chunk := response.read(chunk_size):
                        output.write(chunk)
                        have += len(chunk)
                        if progress:
                            progress(have, total)
                except (http.client.HTTPException, urllib.error.URLError, ConnectionError, TimeoutError) as error:
                    raise SemsearchError(
                        f"download of {source} stopped at {have:,} bytes ({str(error) or type(error).__name__}); "
                        "run the same command again to resume"
                    ) from None
            if total is not None and have != total:
                raise SemsearchError(
                    f"download of {source} stopped at {have:,} of {total:,} bytes; run the same command again to resume"
                )

    _check_download(partial, dataset)
    os.replace(partial, destination)
    return destination


def _check_download(path: Path, dataset: Dataset) -> None:
    size = path.stat().st_size
    if size < dataset.min_bytes:
        raise SemsearchError(f"{path}: {size:,} bytes, expected at least {dataset.min_bytes:,}; the download is incomplete or wrong")
    with path.open("rb") as stream:
        first_line = stream.readline().decode("utf-8", errors="replace").rstrip("\r\n")
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
    header = tuple(next(csv.reader(io.StringIO(first_line), delimiter="\t"), []))
    if header != dataset.header:
        raise SemsearchError(f"{path}: header is {shown(first_line)}, expected {chr(9).join(dataset.header)!r}")
    if rows < dataset.min_rows:
        raise SemsearchError(f"{path}: {rows:,} rows, expected at least {dataset.min_rows:,}")


def resolve_source(source: str | Path) -> Path:
    """A corpus path, or the name of a bundled data set such as ``abcnews-sample``."""
    path = Path(source)
    if not path.exists() and str(source) in DATASETS:
        return bundled_path(str(source))
    return path


def read_documents(documents: Iterable[Document] | str | Path | Corpus, corpus_options: dict[str, Any]) -> Iterable[Document]:
    """Documents to add as given, or read from a corpus path (or a bundled data set's name) with ``corpus_options``."""
    if isinstance(documents, (str, Path)):
        return read_corpus(resolve_source(documents), **corpus_options)
    return documents
