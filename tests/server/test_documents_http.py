"""GET /documents/{id}, GET /documents (filtered pages) and GET /similar/{id}, on a real server, and search pages."""

from __future__ import annotations

from semsearch import Collection
from semsearch.server.launch import RunningServer


def test_one_document_by_id_and_a_missing_one(meta_server: RunningServer, meta_collection_path) -> None:
    answer = meta_server.request("/documents/4")
    assert answer.status == 200, answer.body
    document = answer.body
    with Collection.open(meta_collection_path, verify=False) as collection:
        stored = collection.get([4])[0]
    assert document == {"id": 4, "text": stored.text, "date": None, "meta": {"desk": "business", "year": 2003}}
    missing = meta_server.request("/documents/999")
    assert missing.status == 404 and missing.body["message"] == "no document with id 999 in the collection"
    assert meta_server.request("/documents/-3").status == 404, "no document has that id"


def test_pages_of_documents_filtered(meta_server: RunningServer) -> None:
    first = meta_server.request("/documents?limit=5&where=desk%3Dsport").body
    assert first["count"] == 20 and [d["id"] for d in first["documents"]] == [0, 3, 6, 9, 12]
    second = meta_server.request("/documents?limit=5&offset=5&where=desk%3Dsport").body
    assert [d["id"] for d in second["documents"]] == [15, 18, 21, 24, 27]
    ranged = meta_server.request("/documents?limit=100&where=year%3E%3D2004").body
    assert ranged["count"] == 30 and all(d["meta"]["year"] == 2004 for d in ranged["documents"])
    typo = meta_server.request("/documents?where=dsk%3Dsport")
    assert typo.status == 422 and "no document has a metadata field 'dsk'" in typo.body["message"]
    assert meta_server.request("/documents?limit=100000").status == 422
    assert meta_server.request(f"/documents?offset={2**64}").status == 422


def test_similar_leaves_the_document_out(meta_server: RunningServer) -> None:
    answer = meta_server.request("/similar/7?k=4")
    assert answer.status == 200, answer.body
    hits = answer.body["hits"]
    assert len(hits) == 4 and 7 not in {hit["id"] for hit in hits} and answer.body["id"] == 7
    assert meta_server.request("/similar/999").status == 404
    sport = meta_server.request("/similar/7?k=5&where=desk%3Dsport").body["hits"]
    assert sport and all(hit["meta"]["desk"] == "sport" for hit in sport)


def test_search_pages_over_http(meta_server: RunningServer) -> None:
    whole = meta_server.request("/search?q=flood+warning&k=6").body["hits"]
    second = meta_server.request("/search?q=flood+warning&k=3&offset=3").body["hits"]
    assert [hit["id"] for hit in second] == [hit["id"] for hit in whole[3:]]
    floor = (whole[1]["score"] + whole[2]["score"]) / 2
    above = meta_server.request(f"/search?q=flood+warning&k=6&min_score={floor}").body["hits"]
    assert [hit["id"] for hit in above] == [hit["id"] for hit in whole[:2]]
    assert meta_server.request("/search?q=flood&offset=-1").status == 422


def test_string_ids_over_http(tmp_path, real_encoder, sample_csv) -> None:
    """A collection of string ids: hits, GET /documents/{id} and /similar/{id} take and give the ids as given."""
    import json

    from semsearch.server.launch import start_server, stop_server
    from semsearch.sources.corpus import read_corpus

    texts = [document.text for _, document in zip(range(30), read_corpus(sample_csv))]
    ids = [f"abc-{number:03d}" for number in range(29)] + ["007"]
    corpus = tmp_path / "named.jsonl"
    corpus.write_text("".join(json.dumps({"id": key, "text": text}) + "\n" for key, text in zip(ids, texts)))
    Collection.build(corpus, tmp_path / "named.semsearch", encoder=real_encoder).close()
    running = start_server(tmp_path / "named.semsearch", tmp_path / "server.log")
    try:
        answer = running.request("/documents/abc-004")
        assert answer.status == 200 and answer.body["id"] == "abc-004" and answer.body["text"] == texts[4]
        assert running.request("/documents/007").body["id"] == "007", "'007' is a string id, not 7"
        assert running.request("/documents/7").status == 404
        like = running.request("/similar/abc-004?k=3").body
        assert like["id"] == "abc-004" and len(like["hits"]) == 3 and "abc-004" not in {hit["id"] for hit in like["hits"]}
        hits = running.request(f"/search?q={texts[9].replace(' ', '+')}&k=1").body["hits"]
        assert hits[0]["id"] == "abc-009"
    finally:
        stop_server(running)
