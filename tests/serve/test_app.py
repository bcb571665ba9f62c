"""The HTTP service: one response shape, read-your-writes, token-guarded writes, and 4xx (never 5xx) for bad input."""

import json

import pytest
from fastapi.testclient import TestClient

from graphrec.serve.app import MAX_BATCH, MAX_BODY_BYTES, create_app
from graphrec.serve.live import open_live


@pytest.fixture(scope="module")
def text_run(shop_runs, tmp_path_factory):
    import shutil

    dest = tmp_path_factory.mktemp("app") / "run"
    shutil.copytree(shop_runs("lightgcn"), dest)
    return dest


@pytest.fixture
def client(text_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(text_run, run, ignore=shutil.ignore_patterns("serving"))
    live = open_live(run)
    with TestClient(create_app(live, token=""), raise_server_exceptions=False) as c:
        c.live = live
        yield c
    live.log.close()


def test_recommend_has_the_one_list_shape(client):
    r = client.get("/recommend", params={"user": "u0", "k": 3})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["user"] == "u0" and len(body["items"]) == 3
    assert set(body["items"][0]) == {"item", "score", "title"} and body["items"][0]["title"].startswith("Product")
    assert [x["item"] for x in body["items"]] == [x.item for x in client.live.recommend("u0", k=3)]


def test_an_event_changes_the_next_recommendation(client):
    first = client.get("/recommend", params={"user": "u0", "k": 5}).json()["items"][0]["item"]
    r = client.post("/events", json=[{"user": "u0", "item": first, "timestamp": 1_700_000_000}])
    assert r.status_code == 200 and r.json()["accepted"] == 1
    after = [x["item"] for x in client.get("/recommend", params={"user": "u0", "k": 5}).json()["items"]]
    assert first not in after
    # a new user, created by the event
    assert client.post("/events", json=[{"user": "newbie", "item": "sku1"}]).status_code == 200
    new = client.get("/recommend", params={"user": "newbie", "k": 4}).json()
    assert new["user"] == "newbie" and "sku1" not in [x["item"] for x in new["items"]]


def test_fold_in_search_similar_and_diversity(client):
    body = client.post("/recommend", json={"history": ["sku1", "sku2"], "k": 4}).json()
    assert body["user"] is None and len(body["items"]) == 4
    assert not {"sku1", "sku2"} & {x["item"] for x in body["items"]}
    sim = client.get("/similar", params={"item": "sku3", "k": 5}).json()["items"]
    assert len(sim) == 5 and "sku3" not in [x["item"] for x in sim]
    found = client.get("/search", params={"q": "a red thing", "k": 8}).json()["items"]
    assert {x["item"] for x in found} == {f"sku{j}" for j in range(8)}
    mine = client.get("/search", params={"q": "a red thing", "k": 3, "user": "u1"}).json()
    assert mine["user"] == "u1" and len(mine["items"]) == 3
    diverse = client.get("/recommend", params={"user": "u0", "k": 5, "diversity": 0.9}).json()["items"]
    assert len(diverse) == 5


def test_explain_in_three_formats(client):
    item = client.get("/recommend", params={"user": "u3", "k": 1}).json()["items"][0]["item"]
    j = client.get("/explain", params={"user": "u3", "item": item})
    assert j.status_code == 200 and j.json()["sentence"] and j.json()["note"] is None
    png = client.get("/explain", params={"user": "u3", "item": item, "format": "png"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    html = client.get("/explain", params={"user": "u3", "item": item, "format": "html"})
    assert html.status_code == 200 and html.text.startswith("<!doctype html>")
    # once the user has the item, it is reported as theirs, as /recommend leaves it out, not as ranked
    assert client.post("/events", json=[{"user": "u3", "item": item}]).status_code == 200
    after = client.get("/explain", params={"user": "u3", "item": item}).json()
    assert after["seen"] is True and after["rank"] is None and after["sentence"].startswith("You already rated")
    assert "1 interaction(s) this user added since" in after["note"]


def test_new_items_need_text_and_become_recommendable(client):
    r = client.post("/items", json=[{"item": "sku200", "text": "a green thing", "title": "Product 200"}])
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert client.get("/search", params={"q": "a green thing", "k": 1}).json()["items"][0]["item"] == "sku200"
    assert client.post("/items", json=[{"item": "sku200", "text": "again"}]).status_code == 409
    assert client.post("/events", json=[{"user": "u2", "item": "sku200"}]).status_code == 200
    assert client.get("/explain", params={"user": "u2", "item": "sku200"}).status_code == 409


BAD = [
    ("get", "/recommend", {"params": {"user": "nobody"}}, 404, "nobody"),
    ("get", "/recommend", {"params": {"user": "u0", "k": 0}}, 422, "k"),
    ("get", "/recommend", {"params": {"user": "u0", "k": 5000}}, 422, "k"),
    ("get", "/recommend", {"params": {"user": "u0", "k": 25}}, 422, "k must be in [1, 24]"),
    ("get", "/recommend", {"params": {"user": "u0", "k": "ten"}}, 422, "k"),
    ("get", "/recommend", {"params": {"user": "u0", "diversity": 2}}, 422, "diversity"),
    ("get", "/recommend", {"params": {"user": "u0", "exclude": "sku1,zzz"}}, 404, "zzz"),
    ("get", "/recommend", {}, 422, "user"),
    ("post", "/recommend", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422,
     "the body is not valid JSON (at character 1"),
    ("post", "/recommend", {"json": {"history": []}}, 422, "history"),
    ("post", "/recommend", {"json": {"history": ["sku1"], "bogus": 1}}, 422, "bogus"),
    ("post", "/recommend", {"json": {"history": ["nope"]}}, 404, "nope"),
    ("post", "/recommend", {"json": {"history": [{"a": 1}]}}, 422, "history"),
    ("get", "/similar", {"params": {"item": "nope"}}, 404, "nope"),
    ("get", "/search", {"params": {"q": ""}}, 422, "q"),
    ("get", "/search", {"params": {"q": "x" * 501}}, 422, "q"),
    ("get", "/search", {"params": {"q": "shoes", "user": "ghost"}}, 404, "ghost"),
    ("get", "/explain", {"params": {"user": "u0", "item": "nope"}}, 404, "nope"),
    ("get", "/explain", {"params": {"user": "u0", "item": "sku1", "format": "gif"}}, 422, "format"),
    ("post", "/events", {"json": [{"user": "u0", "item": "nope"}]}, 404, "nope"),
    ("post", "/events", {"json": []}, 422, "at least 1"),
    ("post", "/events", {"json": {"user": "u0", "item": "sku1"}}, 422, "list"),
    ("post", "/events", {"json": [{"user": "u0"}]}, 422, "item"),
    ("post", "/events", {"content": b"[]", "headers": {"content-type": "text/plain"}}, 415,
     "content-type: application/json (this request's content-type: text/plain)"),
    ("post", "/events", {"content": b'[{"user": "u0", "item": "sku1"}]',  # curl -d without -H
                         "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415, "must be JSON"),
    ("post", "/events", {"content": b"[]"}, 415, "(this request's content-type: none)"),  # no type: not read as JSON
    ("post", "/events", {"json": [{"user": None, "item": "sku1"}]}, 422, "user"),
    ("post", "/events", {"json": [{"user": "u0", "item": "sku1"}] * (MAX_BATCH + 1)}, 422, "at most"),
    ("post", "/events", {"content": b"\xff\xfe garbage", "headers": {"content-type": "application/json"}}, 422, "JSON"),
    ("post", "/items", {"json": [{"item": "x", "text": ""}]}, 422, "text"),
    ("post", "/events", {"json": [{"user": "u0", "item": "sku1", "timestamp": 1e300}]}, 422, "timestamp"),
    ("post", "/events", {"json": [{"user": "u0", "item": "sku1", "timestamp": -5}]}, 422, "timestamp"),
    ("post", "/events", {"content": b'[{"user": "\\ud800", "item": "sku1"}]',
                         "headers": {"content-type": "application/json"}}, 422, "not valid Unicode"),
    # JSON true is neither user 1 nor k = 1; 1.0 is no item id
    ("post", "/events", {"json": [{"user": True, "item": "sku1"}]}, 422, "user"),
    ("post", "/events", {"json": [{"user": "u0", "item": 1.0}]}, 422, "item"),
    ("post", "/events", {"json": [{"user": "u0", "item": "sku1", "timestamp": True}]}, 422, "timestamp"),
    ("post", "/recommend", {"json": {"history": [True]}}, 422, "history"),
    ("post", "/recommend", {"json": {"history": ["sku1"], "k": True}}, 422, "k"),
    ("post", "/recommend", {"json": {"history": ["sku1"], "diversity": "NaN"}}, 422, "diversity"),
    ("get", "/recommend", {"params": {"user": "u0", "diversity": "nan"}}, 422, "finite number"),
    ("post", "/items", {"json": [{"item": True, "text": "a red thing"}]}, 422, "item"),
    # a batch names the entry at fault
    ("post", "/events", {"json": [{"user": "u0", "item": "sku1"}, {"user": "u0", "item": "nope"}]}, 404,
     "event 1: unknown item 'nope' (add it with POST /items first)"),
    ("post", "/items", {"json": [{"item": "x", "text": "t"}, {"item": "y", "text": "t", "title": "T" * 201}]}, 422,
     "title"),
    ("post", "/events", {"content": b"[" + b" " * MAX_BODY_BYTES + b"]",
                         "headers": {"content-type": "application/json"}}, 413, "over 16 MiB"),
    ("get", "/nowhere", {}, 404, "Not Found"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "message"), BAD,
                         ids=[f"{m} {p} {s} {msg[:12]}" for m, p, _, s, msg in BAD])
def test_bad_input_is_a_4xx_naming_the_problem(client, method, path, kwargs, status, message):
    log = client.live.log.path
    before = log.read_bytes() if log.exists() else b""
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"], r.json()
    assert "Traceback" not in r.text
    assert (log.read_bytes() if log.exists() else b"") == before  # a rejected write leaves the log alone


def test_writes_need_the_token_when_one_is_set(text_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(text_run, run, ignore=shutil.ignore_patterns("serving"))
    live = open_live(run, text=False)
    with TestClient(create_app(live, token="s3cret")) as c:
        ev = [{"user": "u0", "item": "sku1"}]
        assert c.post("/events", json=ev).status_code == 401
        # before the body's own errors: a stranger learns nothing of what the endpoint expects
        for kwargs in ({"content": b'[{"user": "u0", "it', "headers": {"content-type": "application/json"}},
                       {"content": b"[]", "headers": {"content-type": "text/plain"}}, {"json": [{"user": True}]}):
            r = c.post("/events", **kwargs)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
        r = c.post("/events", content=b'[{"user": "u0", "it', headers={"content-type": "application/json",
                                                                      "authorization": "Bearer s3cret"})
        assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
        assert c.post("/events", json=ev, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/events", json=ev, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/recommend", params={"user": "u0"}).status_code == 200  # reads are open
        # without the text encoder: search and new items are a 503 saying why
        r = c.get("/search", params={"q": "red"})
        assert r.status_code == 503 and "text encoder" in r.json()["detail"]
        assert c.get("/health").json()["auth"] is True
    live.log.close()


def test_a_body_over_the_limit_without_a_length_is_a_413_as_it_arrives(client):
    def chunks():  # sent chunked: no content-length to check first
        yield b"["
        for _ in range(MAX_BODY_BYTES // 2**20 + 1):
            yield b" " * 2**20
        yield b"]"

    r = client.post("/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over 16 MiB" in r.json()["detail"]
    assert r.headers["connection"] == "close"  # the rest of the body is not read
    assert client.get("/health").status_code == 200


def test_health_metrics_and_page(client):
    client.get("/recommend", params={"user": "u0"})
    client.post("/events", json=[{"user": "u0", "item": "sku5"}, {"user": "u1", "item": "sku5"}])
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "lightgcn" and health["events"] == 2
    assert health["items"] == 24 and len(health["version"]) == 12
    text = client.get("/metrics").text
    assert 'graphrec_requests_total{endpoint="/recommend",method="GET",status="200"} 1.0' in text
    assert "graphrec_events_ingested_total 2.0" in text
    assert 'graphrec_request_seconds_bucket{endpoint="/recommend"' in text
    assert f'graphrec_model_info{{model="lightgcn",version="{health["version"]}"}} 1.0' in text
    page = client.get("/")
    assert page.status_code == 200 and "<script>" in page.text and "lightgcn" in page.text
    assert client.get("/openapi.json").json()["paths"]["/events"]["post"]


def test_integer_ids_stay_integers(ml100k_run):
    live = open_live(ml100k_run, text=False)
    with TestClient(create_app(live, token="")) as c:
        body = c.get("/recommend", params={"user": 196, "k": 2}).json()
        assert body["user"] == 196 and all(isinstance(x["item"], int) for x in body["items"])
        assert c.post("/events", json=[{"user": "196", "item": body["items"][0]["item"]}]).status_code == 200
        r = c.post("/events", json=[{"user": 5, "item": 1}, {"user": "bob", "item": 1}])  # ids are integers here
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == "event 1: 'bob' cannot be a user id of this run: its user ids are 64-bit integers"
        r = c.get("/recommend", params={"user": "abc"})
        assert r.status_code == 404 and "integers" in r.json()["detail"]
    live.log.close()
    records = [json.loads(line[9:]) for line in (ml100k_run / "serving" / "events.log").read_bytes().splitlines()]
    assert records[0]["events"][0]["user"] == 196


def test_serve_options_are_checked_before_anything_loads(text_run, capsys):
    from graphrec.cli import main

    assert main(["serve", str(text_run), "--workers", "0"]) == 2
    assert "--workers and --threads must be >= 1" in capsys.readouterr().err
    assert main(["serve", str(text_run), "--port", "70000"]) == 2
    assert "--port must be in [0, 65535]" in capsys.readouterr().err
    assert main(["serve", str(text_run.parent / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    import socket

    with socket.socket() as busy:  # a port something else listens on
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(text_run), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert f"--host 127.0.0.1 --port {port}: cannot listen there" in err and "serving" not in out
