"""``semsearch serve``: the HTTP API and the search page, on uvicorn (extra ``server``)."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from semsearch.errors import MissingExtraError, SemsearchError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def check_can_listen(host: str, port: int) -> None:
    """Raise a SemsearchError now if uvicorn will not be able to listen on host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
        except OSError as error:
            raise SemsearchError(f"cannot listen on {host}:{port}: {error.strerror or error}; choose another --port or --host") from None


def serve(path: str | Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int = 1, access_log: bool = True,
          allow_hosts: Sequence[str] = (), token: str | None = None, encoder: str | None = None, trust_encoder: bool = False,
          write_token: str | None = None) -> None:
    """Serve the collection at ``path`` until interrupted.

    The collection is opened and verified here first, so a wrong path is one clear error
    before anything listens. One worker serves that opened collection; several workers each
    open it again (memory-mapped, so they share one copy of the index in memory). Requests
    whose Host header is not this server's address (127.0.0.1, localhost or [::1] at ``port``,
    or ``host``) nor one of ``allow_hosts`` (``*``: any) are refused, against DNS rebinding.
    With ``token``, every request but ``/health``, the page and the documentation must carry
    ``Authorization: Bearer TOKEN``; listening beyond this machine without one is warned of.
    With ``write_token``, ``POST`` and ``DELETE /documents`` change the collection for a request
    carrying it; without, they are refused (403) and the collection is only read.
    ``encoder`` and ``trust_encoder`` are ``Collection.open``'s: a model the collection names is
    loaded (by the warm-up, before the server listens) only if the user named or trusted it.
    """
    try:
        import fastapi  # noqa: F401
        import swagger_ui_bundle  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise MissingExtraError(error.name or "fastapi", "server", "semsearch serve") from None
    from semsearch.collection import Collection
    from semsearch.server.app import (
        COLLECTION_VARIABLE,
        ENCODER_VARIABLE,
        HOSTS_VARIABLE,
        TOKEN_VARIABLE,
        TRUST_VARIABLE,
        WRITE_VARIABLE,
        create_app,
    )
    from semsearch.server.guards import check_token, is_loopback, served_hosts
    from semsearch.storage.layout import read_manifest

    token = check_token(token) if token else None
    write_token = check_token(write_token) if write_token else None

    read_manifest(Path(path))  # a path that is no collection is the error to report, whatever the port
    check_can_listen(host, port)  # before the model loads: a port in use is a one-line error at once
    collection = Collection.open(path, encoder=encoder, trust_encoder=trust_encoder)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    page = f"http://{shown}:{port}/" + ("?token=TOKEN" if token else "")
    print(f"serving {path} ({len(collection):,} documents): the search page at {page}, "
          f"the API's documentation at http://{shown}:{port}/docs", file=sys.stderr)
    if write_token is not None:
        print("writes are on: POST and DELETE /documents with Authorization: Bearer WRITE_TOKEN", file=sys.stderr)
    if token is None and not is_loopback(host):
        print(f"warning: listening on {host} without a token: anyone who can reach port {port} can search this collection; "
              f"set --token or {TOKEN_VARIABLE}", file=sys.stderr)
    options = {"host": host, "port": port, "access_log": access_log, "log_level": "info"}
    hosts = served_hosts(host, port, allow_hosts)
    if workers == 1:
        uvicorn.run(create_app(collection, close_collection=True, allowed_hosts=hosts, token=token, write_token=write_token), **options)
        return
    collection.close()
    os.environ[COLLECTION_VARIABLE] = str(Path(path).resolve())
    os.environ[HOSTS_VARIABLE] = json.dumps(hosts)
    os.environ[TRUST_VARIABLE] = "1" if trust_encoder else ""
    if encoder:
        os.environ[ENCODER_VARIABLE] = encoder
    else:
        os.environ.pop(ENCODER_VARIABLE, None)
    for variable, value in ((TOKEN_VARIABLE, token), (WRITE_VARIABLE, write_token)):
        if value is not None:
            os.environ[variable] = value
        else:
            os.environ.pop(variable, None)
    uvicorn.run("semsearch.server.app:app_from_environment", factory=True, workers=workers, **options)
