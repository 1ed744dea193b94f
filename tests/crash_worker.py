"""A process that builds or updates collections on request, for the kill tests in test_crash_safety.py.

It loads the real encoder once, then for each request (one JSON object a line on stdin) forks
a child that does the work and exits. It answers {"pid": ...} as soon as the child runs, so
the test can kill the child with SIGKILL at a moment of its choosing; on the next line ("reap")
it collects the child and answers {"exit": ...}. Until then a finished child stays a zombie,
so its pid cannot be reused by another process while the test may still signal it.
Forking keeps the model loaded: each trial costs the work, not the encoder's start-up.

Requests: {"action": "build", "source": PATH, "path": PATH, "backend": NAME}
          {"action": "upsert", "source": PATH, "path": PATH, "remove": [ID, ...]}
          {"action": "compact", "path": PATH}
"""

from __future__ import annotations

import json
import os
import sys


def run(request: dict, encoder) -> None:
    from semsearch import Collection

    if request["action"] == "build":
        Collection.build(request["source"], request["path"], encoder=encoder, backend=request.get("backend", "usearch")).close()
    elif request["action"] == "upsert":
        with Collection.open(request["path"], encoder=encoder, verify=False) as collection:
            collection.upsert(request["source"], rebuild=request.get("rebuild", False))
            if request.get("remove"):
                collection.remove(request["remove"], rebuild=request.get("rebuild", False))
    elif request["action"] == "compact":
        with Collection.open(request["path"], encoder=encoder, verify=False) as collection:
            collection.compact()
    else:
        raise ValueError(f"unknown action {request['action']!r}")


def main() -> None:
    from semsearch.encoders import get_encoder

    encoder = get_encoder("use-multilingual")
    encoder.encode(["warm up"])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                run(request, encoder)
            except BaseException as error:  # reported to the test, which fails on it
                print(f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
                os._exit(1)
            os._exit(0)
        print(json.dumps({"pid": pid}), flush=True)
        sys.stdin.readline()
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
