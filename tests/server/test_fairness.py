"""One large request does not hold the search thread: a small query sent while it is searched is answered first."""

from __future__ import annotations

import http.client
import json
import random
import select
import socket
import time
import urllib.parse

from semsearch.server.launch import RunningServer

WORDS = "flood fire rain drought cricket election council police court health school farmers water coast storm".split()


def test_a_small_query_is_answered_while_a_large_request_is_searched(server: RunningServer) -> None:
    # 100 distinct queries of 2,000 characters: encoding them is most of a second or more; k=1 keeps the answer small,
    # so the order the answers come in is the order the searches finished in.
    rng = random.Random(14)
    queries = [" ".join(rng.choice(WORDS) for _ in range(400))[:2000] for _ in range(100)]
    body = json.dumps({"queries": queries, "k": 1}).encode()
    address = urllib.parse.urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=60) as big:
        big.sendall(f"POST /search HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        time.sleep(0.3)  # the large request is in line, and its first slices are being searched
        small = server.request("/search?q=flood+warning&k=3")
        assert small.status == 200 and len(small.body["hits"]) == 3
        big_answered = select.select([big], [], [], 0)[0]
        response = http.client.HTTPResponse(big)
        response.begin()
        results = json.loads(response.read())["results"]
    assert response.status == 200 and len(results) == 100 and all(len(result["hits"]) == 1 for result in results)
    assert not big_answered, "the small query was answered only after the whole large request"
