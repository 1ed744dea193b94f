"""Who may ask: the Host header check (DNS rebinding), the bearer token and the write token, as small ASGI middleware.

Both answer in the API's shape, a JSON object with a one-line ``message``, before the
application sees the request.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.responses import JSONResponse

from semsearch.errors import SemsearchError
from semsearch.server.models import MAX_BATCH_QUERIES, MAX_BODY_BYTES, MAX_QUERY_CHARS

# The answer to a Host this server is not: "421 Misdirected Request", the request reached a server
# that will not produce an answer for that name.
WRONG_HOST_STATUS = 421
# Served without a token even when one is set: the health check for a load balancer, and the page's
# static files and the API's documentation, which say nothing about the collection (the page asks
# for the token itself and sends it with its requests).
OPEN_PATHS = ("/", "/health", "/docs", "/openapi.json")
OPEN_PREFIXES = ("/static/", "/docs-assets/")


def served_hosts(host: str, port: int, allowed: Iterable[str] = ()) -> list[str]:
    """The Host header values a server listening on host:port answers: its loopback names and ``--host`` at
    that port (also bare, on port 80), then the ``--allow-host`` names as given (``*``: any host)."""
    names = ["127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host and not host.startswith("[") else host]
    hosts: list[str] = []
    for name in names:
        for value in (f"{name}:{port}", *([name] if port == 80 else [])):
            if value.lower() not in hosts:
                hosts.append(value.lower())
    return hosts + [name.strip().lower() for name in allowed if name.strip()]


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach an address (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_host(value: str) -> tuple[str, str | None]:
    """``name:port`` (or ``[v6]:port``) as (name, port or None)."""
    if value.startswith("["):
        name, _, rest = value.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else None
    name, colon, port = value.rpartition(":")
    return (name, port) if colon and port.isdigit() else (value, None)


def host_allowed(value: str, allowed: Sequence[str]) -> bool:
    """Whether a request's Host header names this server: an exact entry of ``allowed``, or an entry
    without a port that matches the name at any port, or ``*``."""
    value = value.strip().lower()
    name, _ = _split_host(value)
    for entry in allowed:
        if entry == "*" or entry == value or (_split_host(entry)[1] is None and entry == name):
            return True
    return False


def _shown(value: str) -> str:
    """A client's header value in a message: quoted, escaped, cut short."""
    return json.dumps(value[:80] + ("…" if len(value) > 80 else ""), ensure_ascii=True)


async def _answer(send: Any, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


class HostCheck:
    """ASGI middleware: a request whose Host header is not one of ``allowed`` is answered 421.

    A web page elsewhere can point a name it controls at 127.0.0.1 (DNS rebinding) and have the
    browser send requests to this server as if it were that site; the browser still sends the
    page's name as Host, which is how such a request is told apart. A request without a Host
    header (HTTP/1.0) cannot come from such a page and is let through.
    """

    def __init__(self, app: Any, allowed: Sequence[str]) -> None:
        self.app = app
        self.allowed = [entry.lower() for entry in allowed]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope["headers"]).get(b"host")
            if host is not None and not host_allowed(host.decode("latin-1"), self.allowed):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                shown = host.decode("latin-1")
                name = _split_host(shown.strip().lower())[0] or "NAME"
                served = next((entry for entry in self.allowed if entry != "*"), "127.0.0.1")
                message = (f"this server does not answer for Host {_shown(shown)}: open it as http://{served}/, "
                           f"or start semsearch serve with --allow-host {name}")
                await _answer(send, WRONG_HOST_STATUS, " ".join(message.splitlines()))
                return
        await self.app(scope, receive, send)


def check_token(token: str) -> str:
    """A token as ``--token`` or SEMSEARCH_TOKEN gives it, checked: it travels in a header, so printable ASCII without spaces."""
    if not token or not all("!" <= character <= "~" for character in token):
        raise SemsearchError("the token must be printable ASCII without spaces (it is sent as Authorization: Bearer TOKEN), "
                             "e.g. one from: python -c 'import secrets; print(secrets.token_urlsafe())'")
    return token


def token_header_matches(header: bytes | None, token: bytes) -> bool:
    scheme, _, given = (header or b"").strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)


class TokenCheck:
    """ASGI middleware: every request but those for ``OPEN_PATHS`` and ``OPEN_PREFIXES`` must carry
    ``Authorization: Bearer TOKEN``; otherwise 401 with ``WWW-Authenticate: Bearer``.

    ``also``: other tokens let through too; the write token, since a request carries one bearer token
    and a write must carry that one (``WriteCheck`` then checks it is the write token)."""

    def __init__(self, app: Any, token: str, also: Sequence[str] = ()) -> None:
        self.app = app
        self.tokens = [token.encode(), *(other.encode() for other in also)]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not is_open_path(scope["path"]):
            header = dict(scope["headers"]).get(b"authorization")
            # Every token compared, in constant time each, so the answer's time does not say which nearly matched.
            if not [token for token in self.tokens if token_header_matches(header, token)]:
                if header is None:
                    message = ("this server needs a token: send the header Authorization: Bearer TOKEN "
                               "(in a browser, open the page as /?token=TOKEN)")
                    challenge = b'Bearer realm="semsearch"'
                else:
                    message = "the token is wrong: send the header Authorization: Bearer TOKEN with the token the server was started with"
                    challenge = b'Bearer realm="semsearch", error="invalid_token"'
                await _answer(send, 401, message, [(b"www-authenticate", challenge)])
                return
        await self.app(scope, receive, send)


# The requests that change the collection (server/writes.py); everything else only reads.
WRITES = (("POST", "/documents"), ("DELETE", "/documents"))
WRITE_TOKEN_VARIABLE = "SEMSEARCH_WRITE_TOKEN"


class WriteCheck:
    """ASGI middleware for the writes (``WRITES``): with no write token, every one is a 403 saying how to
    turn writes on; with one, a write without ``Authorization: Bearer WRITE_TOKEN`` is a 401. Answered
    before the body is read, so a client without the token cannot make the server read or parse one."""

    def __init__(self, app: Any, write_token: str | None) -> None:
        self.app = app
        self.token = write_token.encode() if write_token is not None else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"].rstrip("/") or "/") in WRITES:
            if self.token is None:
                await _answer(send, 403, "writes are off on this server: start it with semsearch serve --write-token TOKEN "
                                         f"(or set {WRITE_TOKEN_VARIABLE}), then send Authorization: Bearer TOKEN with each write")
                return
            header = dict(scope["headers"]).get(b"authorization")
            if not token_header_matches(header, self.token):
                if header is None:
                    message = "a write needs the write token: send the header Authorization: Bearer TOKEN"
                    challenge = b'Bearer realm="semsearch writes"'
                else:
                    message = "the write token is wrong: send Authorization: Bearer TOKEN with the --write-token the server was started with"
                    challenge = b'Bearer realm="semsearch writes", error="invalid_token"'
                await _answer(send, 401, message, [(b"www-authenticate", challenge)])
                return
        await self.app(scope, receive, send)


def is_open_path(path: str) -> bool:
    """Whether ``path`` is served without the token."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class RedactToken(logging.Filter):
    """Keeps the page's ``?token=`` out of the access log (uvicorn logs each request's path and query)."""

    PATTERN = re.compile(r"(?<=[?&]token=)[^&\s]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, str) and "token=" in arg for arg in record.args):
            record.args = tuple(self.PATTERN.sub("REDACTED", arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


class BodySizeLimit:
    """ASGI middleware: a request body over ``MAX_BODY_BYTES`` is answered 413 before it is read whole.

    Without it, a client could make the server hold and parse any amount of JSON. The body
    (small, by then) is read here and handed on to the application as one message.
    """

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict[str, Any], send: Any) -> None:
        if (scope["method"], scope["path"].rstrip("/")) in WRITES:
            advice = "send the documents in several requests"
        else:
            advice = f"send at most {MAX_BATCH_QUERIES} queries of at most {MAX_QUERY_CHARS:,} characters"
        message = f"the request body is over {self.limit:,} bytes; {advice}"
        await JSONResponse(status_code=413, content={"message": message})(scope, _disconnected, send)


async def _disconnected() -> dict[str, Any]:
    return {"type": "http.disconnect"}
