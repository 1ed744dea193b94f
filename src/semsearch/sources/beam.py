"""Embed a corpus on Apache Beam, for corpora that outgrow one machine (extra ``beam``).

    corpus file -> Documents -> Reshuffle -> batches -> EmbedBatches (encoder loaded once per
    worker, in DoFn.setup) -> sharded Parquet: id, text, date, meta, embedding

The output is what ``semsearch build --from-embeddings 'PREFIX*.parquet'`` reads (see
``embedding_files``); the files record the encoder, so queries use the same one. Ids are those
of the corpus reader (the id column, else the row number), assigned before anything is
distributed, so they are stable and unique across shards. Reading the corpus is one step on
one worker (the same reader as a local build, so both parse alike); the embedding, which is
nearly all the work, is spread over every worker.

Runs on the DirectRunner by default, in one process per CPU; any other runner (Dataflow, Flink,
Spark) through Beam's standard pipeline options. Reduction (``--reduce``) is not done here:
``build --from-embeddings ... --reduce pca:128`` fits it on the full vectors, keeps them for
re-ranking, and stores the fitted reducer with the collection, exactly as a local build does.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from semsearch.cpus import available_cpus
from semsearch.encoders.parallel import DEFAULT_BATCH_SIZE
from semsearch.sources.embedding_files import PARQUET_METADATA_KEY
from semsearch.errors import SemsearchError, import_optional

_root_level = logging.root.level
logging.root.setLevel(logging.ERROR)  # importing Beam warns about Google Cloud libraries this pipeline never uses
try:
    beam = import_optional("apache_beam", "apache-beam", "beam", "semsearch beam-embed (Apache Beam)")
finally:
    logging.root.setLevel(_root_level)


@contextmanager
def local_copy(source: str) -> Iterator[Path]:
    """A local path to read ``source`` from: the file itself, or a temporary copy of a remote one (gs://, s3://...)."""
    if Path(source).is_file() or "://" not in source:
        yield Path(source)
        return
    from apache_beam.io.filesystems import FileSystems

    directory = tempfile.mkdtemp(prefix="semsearch-beam-")
    try:
        target = Path(directory) / os.path.basename(source)
        with FileSystems.open(source) as remote, target.open("wb") as local:
            shutil.copyfileobj(remote, local, 1 << 20)
        yield target
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def read_documents(source: str, corpus_options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The corpus as plain records, read with the same reader as a local build."""
    from semsearch.sources.corpus import read_corpus

    with local_copy(source) as path:
        for document in read_corpus(path, **corpus_options):
            yield {
                "id": document.id,
                "text": document.text,
                "date": document.date.isoformat() if document.date else None,
                "meta": json.dumps(document.meta, ensure_ascii=False, default=str) if document.meta else None,
            }


class EmbedBatches(beam.DoFn):  # type: ignore[misc]
    """Embeds a batch of records; the encoder is loaded once per worker, in ``setup``."""

    def __init__(self, encoder_spec: str, threads: int) -> None:
        super().__init__()
        self.encoder_spec = encoder_spec
        self.threads = threads
        self.encoder: Any = None

    def setup(self) -> None:
        from semsearch.encoders import get_encoder

        self.encoder = get_encoder(self.encoder_spec).with_threads(self.threads)

    def process(self, batch: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        vectors = self.encoder.encode([record["text"] for record in batch])
        for record, vector in zip(batch, vectors):
            yield {**record, "embedding": vector.tolist()}


def parquet_schema(encoder_spec: dict[str, Any]) -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.int64()),
            ("text", pa.string()),
            ("date", pa.string()),
            ("meta", pa.string()),
            ("embedding", pa.list_(pa.float32())),
        ],
        metadata={PARQUET_METADATA_KEY: json.dumps({"encoder": encoder_spec}).encode()},
    )


def pipeline_options(arguments: Sequence[str]) -> Any:
    """Beam's options from ``arguments``; on the DirectRunner, one worker process per CPU unless told otherwise."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

    options = PipelineOptions(list(arguments))
    runner = options.view_as(StandardOptions).runner
    if runner in (None, "DirectRunner", "direct"):
        direct = options.view_as(DirectOptions)
        given = " ".join(arguments)
        if "direct_num_workers" not in given:
            direct.direct_num_workers = available_cpus()
        if "direct_running_mode" not in given:
            direct.direct_running_mode = "multi_processing"
    return options


@contextmanager
def beam_log(verbose: bool) -> Iterator[Path | None]:
    """Beam's own log (about 50 lines from the runner and each worker process) to a file, unless ``verbose``.

    The DirectRunner's workers are processes that write to the standard error they inherit, so
    the file descriptor itself is pointed at the file while the pipeline runs, then put back.
    """
    if verbose:
        yield None
        return
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    handle, name = tempfile.mkstemp(prefix="semsearch-beam-", suffix=".log")
    saved = os.dup(2)
    sys.stderr.flush()
    os.dup2(handle, 2)
    try:
        yield Path(name)
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(handle)


def run_pipeline(
    source: str,
    output_prefix: str,
    beam_arguments: Sequence[str] = (),
    *,
    encoder: str = "use-multilingual",
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads: int = 1,
    verbose: bool = False,
    **corpus_options: Any,
) -> list[str]:
    """Embed ``source`` into ``OUTPUT_PREFIX-SSSSS-of-NNNNN.parquet``; returns the files written.

    Beam's log goes to a temporary file unless ``verbose``; it is kept, and named in the error,
    when the pipeline fails, and deleted when it succeeds.
    """
    with beam_log(verbose) as log_file:
        try:
            files = _run(source, output_prefix, beam_arguments, encoder, batch_size, threads, corpus_options)
        except SemsearchError as error:
            raise SemsearchError(f"{error}{f' (Beam log: {log_file})' if log_file else ''}") from None
        except Exception as error:  # noqa: BLE001 - Beam wraps a worker's failure in its own exceptions
            reason = " ".join(str(error).split())[-500:]
            raise SemsearchError(f"the Beam pipeline failed: {reason}{f' (Beam log: {log_file})' if log_file else ''}") from None
    if log_file is not None:
        log_file.unlink(missing_ok=True)
    return files


def _run(source: str, output_prefix: str, beam_arguments: Sequence[str], encoder: str, batch_size: int, threads: int,
         corpus_options: dict[str, Any]) -> list[str]:
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.io.parquetio import WriteToParquet

    from semsearch.encoders import get_encoder

    spec = get_encoder(encoder).spec()  # the model itself loads only on the workers
    options = pipeline_options(beam_arguments)
    with beam.Pipeline(options=options) as pipeline:
        (
            pipeline
            | "Source" >> beam.Create([source])
            | "ReadCorpus" >> beam.FlatMap(read_documents, corpus_options)
            | "Spread" >> beam.Reshuffle()
            | "Batch" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
            | "Embed" >> beam.ParDo(EmbedBatches(encoder, threads))
            | "WriteParquet" >> WriteToParquet(output_prefix, parquet_schema(spec), file_name_suffix=".parquet", codec="snappy")
        )
    return sorted(metadata.path for metadata in FileSystems.match([f"{output_prefix}*.parquet"])[0].metadata_list)
