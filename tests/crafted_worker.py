"""A process that opens, searches and updates crafted collections on request, for test_crafted_collections.py.

Run as ``python -m tests.crafted_worker``. It imports semsearch and every backend's library once,
says {"ready": true}, then reads one JSON request a line on stdin and answers one JSON line on
stdout per request:

    {"case": N, "path": DIR, "update": null | "add" | "remove", "cli": false}
 -> {"case": N, "outcome": "answered" | "refused" | "exception", "detail": ..., "problems": [...]}

"answered": every search gave hits of documents the collection holds, with finite scores, and
the update (if asked) went through; "refused": a SemsearchError, whose one-line message is the
detail; "exception": anything else, with its traceback. "problems" lists what was wrong with an
answer (a hit of an id the store does not hold, a multi-line message, the CLI's output). A
signal that kills the process, or a request it never answers, is the test's to see: it then
starts another worker for the remaining cases.

The address space is capped (``MEMORY_LIMIT``), so that a file that makes a library allocate
without bound fails here, as an error the test reports, instead of the machine's OOM killer
choosing a victim.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import traceback
from typing import Any

MEMORY_LIMIT = 6 << 30
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("police investigate fatal crash", {}),
    ("government budget cuts", {"mode": "hybrid"}),
    ("flood warning for the coast", {"date_from": "2003-02-20"}),
]


def _check_hits(collection: Any, problems: list[str], when: str) -> None:
    known = set(collection.store.ids().tolist())
    for query, options in QUERIES:
        hits = collection.search(query, k=5, **options)
        if len(hits) > 5:
            problems.append(f"{when}: {len(hits)} hits for k=5")
        for hit in hits:
            if hit.id not in known:
                problems.append(f"{when}: hit {hit.id} is not in the store")
            if not math.isfinite(hit.score):
                problems.append(f"{when}: hit {hit.id} has score {hit.score}")


def _one_line(message: str, problems: list[str]) -> None:
    if "\n" in message or "\r" in message or not message.strip():
        problems.append(f"not one line: {message!r}")


def run_case(request: dict[str, Any], encoder: Any) -> dict[str, Any]:
    from semsearch import Collection
    from semsearch.documents import Document
    from semsearch.errors import SemsearchError

    problems: list[str] = []
    result: dict[str, Any] = {"case": request["case"], "problems": problems}
    try:
        with Collection.open(request["path"], encoder=encoder) as collection:
            _check_hits(collection, problems, "search")
            update = request.get("update")
            rebuild = collection.manifest["backend"]["name"] == "annoy"
            if update == "add":
                first = collection.store.max_id() + 1
                texts = ["council approves new harbour plan", "storm damages coastal homes", "minister defends budget"]
                collection.add([Document(id=first + offset, text=text) for offset, text in enumerate(texts)], rebuild=rebuild)
                _check_hits(collection, problems, "after add")
            elif update == "remove":
                ids = collection.store.ids()[:3].tolist()
                collection.remove(ids, rebuild=rebuild)
                _check_hits(collection, problems, "after remove")
        result.update(outcome="answered", detail="")
    except SemsearchError as error:
        _one_line(str(error), problems)
        result.update(outcome="refused", detail=str(error), type=type(error).__name__)
    except BaseException as error:  # noqa: BLE001 - any other exception is what the test looks for
        result.update(outcome="exception", detail="".join(traceback.format_exception(error))[-4000:], type=type(error).__name__)
    if request.get("cli"):
        result["cli"] = _cli_info(request["path"], problems)
    return result


def _cli_info(path: str, problems: list[str]) -> dict[str, Any]:
    """``semsearch info PATH`` as a user runs it (in this process): exit 0 with facts, or 1 with one line."""
    from click.testing import CliRunner

    from semsearch.cli import cli

    outcome = CliRunner().invoke(cli, ["info", path])
    output = outcome.output.strip()
    if outcome.exit_code not in (0, 1):
        problems.append(f"semsearch info exited {outcome.exit_code}: {output[-500:]!r}")
    if outcome.exit_code == 1:
        if len(output.splitlines()) != 1 or not output.startswith("Error: ") or "unexpected" in output or "Traceback" in output:
            problems.append(f"semsearch info's error is not one line of a SemsearchError: {output[-500:]!r}")
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        problems.append(f"semsearch info raised {type(outcome.exception).__name__}")
    return {"exit": outcome.exit_code, "output": output[-300:]}


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    import faiss  # noqa: F401 - every library loaded before the first case, as a long-running server has them
    import annoy  # noqa: F401
    import hnswlib  # noqa: F401

    from semsearch.backends.usearch import UsearchIndex
    from tests.conftest import FakeEncoder

    UsearchIndex(4)
    encoder = FakeEncoder()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps(run_case(json.loads(line), encoder)), flush=True)


if __name__ == "__main__":
    main()
