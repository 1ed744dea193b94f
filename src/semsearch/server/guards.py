"""Who may ask: the Host header check (DNS rebinding), as small ASGI middleware.

It answers in the API's shape, a JSON object with a one-line ``message``, before the
application sees the request.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from typing import Any

# The answer to a Host this server is not: "421 Misdirected Request", the request reached a server
# that will not produce an answer for that name.
WRONG_HOST_STATUS = 421


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
