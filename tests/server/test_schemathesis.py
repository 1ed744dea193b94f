"""Schemathesis against the server's own OpenAPI schema (issue 14): requests generated from the schema, valid and
invalid, sent to a real `semsearch serve`; no answer is a server error, and every answer is one the schema describes.

Deterministic: derandomized, no example database, a bounded number of examples per operation.
"""

from __future__ import annotations

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

from semsearch.server.launch import RunningServer  # noqa: E402

EXAMPLES = 50  # per operation and mode
OPERATIONS = [("/search", "GET"), ("/search", "POST"), ("/info", "GET"), ("/health", "GET"),
              ("/documents/{document_id}", "GET"), ("/documents", "GET"), ("/similar/{document_id}", "GET")]
# Invalid requests of the operations that take something that can be invalid (/info and /health take nothing).
CASES = [(path, method, GenerationMode.POSITIVE) for path, method in OPERATIONS] + [
    (path, method, GenerationMode.NEGATIVE) for path, method in OPERATIONS if path not in ("/info", "/health")]
CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance],
    # An invalid request must be refused (4xx), and the refusal must be in the shape the schema gives.
    GenerationMode.NEGATIVE: [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance,
                              negative_data_rejection],
}


@pytest.fixture(scope="module")
def schema(meta_server: RunningServer):  # noqa: ANN201
    return schemathesis.openapi.from_url(meta_server.url + "/openapi.json")


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
