"""Nothing acknowledged is lost: kill -9 the server during a stream of events, restart it, compare."""

import os
import signal
import socket
import threading
import time

import httpx
import pytest

from graphrec.data.wal import EventLog, encode_record
from graphrec.serve.process import ServerProcess


def stream_events(url, acked, stop, users, items):
    """Post one event at a time until stopped; remember those the server acknowledged (200)."""
    with httpx.Client(base_url=url, timeout=5) as c:
        n = 0
        while not stop.is_set():
            event = {"user": users[n % len(users)], "item": items[(n * 7) % len(items)]}
            n += 1
            try:
                r = c.post("/events", json=[event])
            except httpx.HTTPError:
                continue  # the server is gone: this event was never acknowledged
            if r.status_code == 200:
                acked.append((event["user"], event["item"]))


def test_kill_9_during_a_stream_of_events_loses_nothing_acknowledged(served, tmp_path):
    run = served("itemknn")
    users = [f"u{i}" for i in range(30)] + ["new-a", "new-b"]
    items = [f"sku{j}" for j in range(24)]
    acked: list[tuple[str, str]] = []
    stop = threading.Event()
    server = ServerProcess(run, options=["--no-text"]).start()
    writer = threading.Thread(target=stream_events, args=(server.url, acked, stop, users, items))
    writer.start()
    while len(acked) < 60:  # kill it mid-stream, with requests in flight
        threading.Event().wait(0.01)
        assert writer.is_alive()
    server.kill()
    stop.set()
    writer.join()
    assert len(acked) >= 60

    with EventLog(run / "serving" / "events.log") as log:
        logged = [(e["user"], e["item"]) for r in log.replay() for e in r["events"]]
    assert logged[: len(acked)] == acked  # every acknowledged event, in order (one more may have been logged)
    assert len(logged) - len(acked) <= 1

    with ServerProcess(run, options=["--no-text"]) as again, httpx.Client(base_url=again.url) as c:
        assert c.get("/health").json()["events"] == len(logged)
        for user, item in set(acked):
            listed = [x["item"] for x in c.get("/recommend", params={"user": user, "k": 24}).json()["items"]]
            assert item not in listed, (user, item)


def test_a_torn_last_record_is_dropped_on_restart_and_the_rest_served(served):
    run = served("itemknn")
    log = run / "serving" / "events.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    good = encode_record({"op": "events", "events": [{"user": "u1", "item": "sku3", "timestamp": 1.0}]})
    torn = encode_record({"op": "events", "events": [{"user": "u1", "item": "sku4", "timestamp": 2.0}]})[:-9]
    log.write_bytes(good + torn)
    with ServerProcess(run, options=["--no-text"]) as server, httpx.Client(base_url=server.url) as c:
        assert c.get("/health").json()["events"] == 1
        listed = [x["item"] for x in c.get("/recommend", params={"user": "u1", "k": 24}).json()["items"]]
        assert "sku3" not in listed
        assert c.post("/events", json=[{"user": "u1", "item": "sku4"}]).status_code == 200
    assert "torn last record" in server.log_path.read_text()
    with EventLog(log) as again:
        assert [e["item"] for r in again.replay() for e in r["events"]] == ["sku3", "sku4"]


@pytest.mark.parametrize("workers", [2])
def test_workers_share_the_log_read_your_writes(served, workers):
    run = served("itemknn")
    with ServerProcess(run, options=["--no-text", "--workers", str(workers)]) as server, \
            httpx.Client(base_url=server.url) as c:
        for n in range(40):  # the write and the next read may land on different workers
            user, item = f"u{n % 30}", f"sku{(n * 5) % 24}"
            assert c.post("/events", json=[{"user": user, "item": item}]).status_code == 200
            listed = [x["item"] for x in c.get("/recommend", params={"user": user, "k": 24}).json()["items"]]
            assert item not in listed
        assert "graphrec_events_ingested_total 40.0" in c.get("/metrics").text


def _gone(pid):
    """The process has exited (a zombie waiting for its new parent to reap it counts)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_workers_stop_when_the_serve_process_is_killed(served):
    run = served("itemknn")
    with ServerProcess(run, options=["--no-text", "--workers", "2"]) as server, httpx.Client(base_url=server.url) as c:
        pids = set()
        for _ in range(50):
            if len(pids) == 2:
                break
            with httpx.Client(base_url=server.url) as fresh:  # a new connection: the kernel picks a worker
                pids.add(fresh.get("/health").json()["pid"])
        assert len(pids) == 2
        assert c.post("/events", json=[{"user": "u1", "item": "sku3"}]).status_code == 200
        os.kill(server.proc.pid, signal.SIGKILL)  # the parent only: it has no chance to stop its workers
        deadline = time.monotonic() + 20
        while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(_gone(p) for p in pids), "workers outlived graphrec serve"
        with socket.socket() as s:  # the port is free for a restart (a server sets SO_REUSEADDR too)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", server.port))
            s.listen()
