"""Schemathesis against the server's own OpenAPI schema (issue 14): requests generated from the schema, valid and
invalid, sent to a real `semsearch serve`; no answer is a server error, and every answer is one the schema describes.

Deterministic: derandomized, no example database, a bounded number of examples per operation. The writes
(POST and DELETE /documents) go to a server of their own, with writes on, over a copy of the collection.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed: pip install 'semsearch[dev]'")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from semsearch.server.launch import RunningServer, start_server, stop_server  # noqa: E402

EXAMPLES = 50  # per operation and mode
OPERATIONS = [("/search", "GET"), ("/search", "POST"), ("/info", "GET"), ("/health", "GET"),
              ("/documents/{document_id}", "GET"), ("/documents", "GET"), ("/similar/{document_id}", "GET")]
# Invalid requests of the operations that take something that can be invalid (/info and /health take nothing).
CASES = [(path, method, GenerationMode.POSITIVE) for path, method in OPERATIONS] + [
    (path, method, GenerationMode.NEGATIVE) for path, method in OPERATIONS if path not in ("/info", "/health")]
WRITES = [("/documents", "POST"), ("/documents", "DELETE")]
WRITE_CASES = [(path, method, mode) for path, method in WRITES for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
WRITE_TOKEN = "schemathesis-write-token"
CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance],
    # An invalid request must be refused (4xx), and the refusal must be in the shape the schema gives.
    GenerationMode.NEGATIVE: [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance,
                              negative_data_rejection],
}


@pytest.fixture(scope="module")
def schema(meta_server: RunningServer):  # noqa: ANN201
    return schemathesis.openapi.from_url(meta_server.url + "/openapi.json")


@pytest.fixture(scope="module")
def write_server(meta_collection_path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The metadata collection, copied (the writes change it), served with writes on."""
    directory = tmp_path_factory.mktemp("schemathesis-writes")
    path = shutil.copytree(meta_collection_path, directory / "meta.semsearch")
    running = start_server(path, directory / "server.log", "--write-token", WRITE_TOKEN)
    yield running
    stop_server(running)


def run_cases(server: RunningServer, path: str, method: str, mode: GenerationMode, headers: dict[str, str] | None = None) -> None:
    operation = schemathesis.openapi.from_url(server.url + "/openapi.json")[path][method]
    checks = CHECKS[mode]

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case) -> None:  # noqa: ANN001
        case.call_and_validate(base_url=server.url, checks=checks, headers=headers, timeout=60)

    check()
    log = server.log_text()
    assert "Traceback" not in log and "500 Internal Server Error" not in log


@pytest.mark.parametrize("path, method, mode", CASES,
                         ids=[f"{method} {path} {'valid' if mode is GenerationMode.POSITIVE else 'invalid'}" for path, method, mode in CASES])
def test_the_server_keeps_to_its_schema(meta_server: RunningServer, schema, path: str, method: str, mode: GenerationMode) -> None:
    operation = schema[path][method]
    checks = CHECKS[mode]

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case) -> None:  # noqa: ANN001
        case.call_and_validate(base_url=meta_server.url, checks=checks, timeout=60)

    check()
    log = meta_server.log_text()
    assert "Traceback" not in log and "500 Internal Server Error" not in log


@pytest.mark.parametrize("path, method, mode", WRITE_CASES,
                         ids=[f"{method} {path} {'valid' if mode is GenerationMode.POSITIVE else 'invalid'}" for path, method, mode in WRITE_CASES])
def test_the_writes_keep_to_the_schema(write_server: RunningServer, path: str, method: str, mode: GenerationMode) -> None:
    run_cases(write_server, path, method, mode, {"Authorization": f"Bearer {WRITE_TOKEN}"})
    assert write_server.request("/health").status == 200  # and the collection is whole after it all


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_the_writes_refused_keep_to_the_schema(meta_server: RunningServer, method: str) -> None:
    """Writes off: every generated write, valid or not, is the 403 the schema describes."""
    run_cases(meta_server, "/documents", method, GenerationMode.POSITIVE)
