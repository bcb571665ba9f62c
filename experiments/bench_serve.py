"""graphrec serve under load, side by side with Cornac's server, on a trained ML-100K run.

Starts ``graphrec serve`` (one worker) on 127.0.0.1 for a copy of the run (a
fresh serving log), drives it with a bounded closed loop (``--clients``
concurrent httpx clients, a fixed number of requests per phase, a time cap),
and prints p50/p95/p99 latency and throughput for:

* ``/recommend`` (random trained users, k=10, seen items left out);
* ``/explain`` (each user's top-1) and ``/search`` (short queries, with a user);
* a mixed workload, 90% ``/recommend`` and 10% ``POST /events``: each write
  records the user's current top-1 item, and the client's next request reads
  that user's list again; the check holds when the item is gone
  (read-your-writes, counted over every write).

Then Cornac's server (``flask --app cornac.serving.app run``, Cornac's
documented way; 3.0.1 has no ``python -m cornac.serving``) serving Cornac's BPR
(dim 64) trained on the same run's train + valid pairs, on its
``/recommend?uid=U&k=10&remove_seen=true``, with the same users, clients and
request count. Both servers run on this machine beside the load generator.

With ``--faiss``, the retrieval step alone: exact top-10 by matrix product
against faiss HNSW (faiss-cpu) on a synthetic catalogue (``--ann-items``
64-d item vectors), its recall@10 against the exact lists and the latency of
each.

Goals (issue 13, this 2-core machine): ``/recommend`` p99 < 10 ms at >= 500
requests/s; >= 5x Cornac's throughput at an equal or lower p99; every
read-your-writes check holds; zero 5xx.

Usage: python experiments/bench_serve.py [--run RUN_DIR] [--requests 4000] [--clients 4] [--faiss]
Output: printed, and saved to ``--out`` (default ``experiments/results/bench_serve.txt``); its last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from report import Report  # experiments/report.py: scripts run from this folder

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
QUERIES = ["space adventure", "romantic comedy", "crime thriller in new york", "animated film for children",
           "war drama", "horror", "musical", "documentary", "western with cowboys", "science fiction robots",
           "a mystery detective story", "love story in paris", "action hero", "film noir", "fantasy quest"]


@dataclass
class Phase:
    """Latencies (seconds) and statuses of one phase's requests."""

    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, latency: float, status: int) -> None:
        self.latencies.append(latency)
        self.statuses.append(status)

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        return 1000 * xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else float("nan")

    @property
    def errors_5xx(self) -> int:
        return sum(s >= 500 for s in self.statuses)

    @property
    def other_failures(self) -> int:
        return sum(s < 200 or 300 <= s < 500 for s in self.statuses)

    def row(self) -> str:
        return (f"| {self.name} | {len(self.latencies)} | {self.pct(0.5):.2f} | {self.pct(0.95):.2f} | "
                f"{self.pct(0.99):.2f} | {self.rps:,.0f} | {self.errors_5xx} | {self.other_failures} |")


async def closed_loop(phase: Phase, clients: int, requests: int, cap: float,
                      one: Callable[[httpx.AsyncClient, int, random.Random], Awaitable[int | None]],
                      base_url: str, seed: int = 0) -> Phase:
    """``clients`` loops, each sending its next request when the last one answered, until ``requests`` in all or
    ``cap`` seconds. ``one`` sends one request (or a write plus its check) and returns the status to record."""
    counter = iter(range(requests))
    deadline = time.perf_counter() + cap
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def loop(c: httpx.AsyncClient, rng: random.Random) -> None:
        for n in counter:
            if time.perf_counter() > deadline:
                return
            await one(c, n, rng)

    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as c:
        start = time.perf_counter()
        await asyncio.gather(*(loop(c, random.Random(seed * 1000 + i)) for i in range(clients)))
        phase.seconds = time.perf_counter() - start
    return phase


async def timed(phase: Phase, c: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response | None:
    start = time.perf_counter()
    try:
        r = await c.request(method, url, **kw)
    except httpx.HTTPError:
        phase.add(time.perf_counter() - start, 599)
        return None
    phase.add(time.perf_counter() - start, r.status_code)
    return r


def trained_run(a: argparse.Namespace, say: Report) -> Path:
    if a.run:
        say(f"run: {a.run} (given)")
        return Path(a.run)
    run = Path(a.cache) / "bench-serve-ml100k-lightgcn"
    if (run / "bundle.json").is_file():
        say(f"run: {run} (experiments/ml100k-lightgcn.yaml, trained earlier by this script)")
        return run
    from graphrec.run import load_config, run_experiment

    cfg = load_config(HERE / "ml100k-lightgcn.yaml", {"train.progress": False, "train.threads": 2})
    t = time.perf_counter()
    run, _ = run_experiment(cfg, run, overwrite=True, log=lambda *_: None)
    say(f"run: {run} (experiments/ml100k-lightgcn.yaml, trained by this script in {time.perf_counter() - t:.0f} s)")
    return run


def cornac_server(run: Path, tmp: Path, port: int, a: argparse.Namespace, say: Report) -> subprocess.Popen[bytes]:
    import graphrec

    out = subprocess.run(["bash", str(PEERS / "setup_cornac.sh")], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"setup_cornac.sh failed:\n{out.stderr[-3000:]}")
    venv = Path(out.stdout.strip().splitlines()[-1])
    deployed = graphrec.load(run)
    seen = deployed.seen.tocoo()
    pairs = tmp / "pairs.tsv"
    users, items = deployed.users.ids, deployed.items.ids
    pairs.write_text("".join(f"{users[u]}\t{items[i]}\n" for u, i in zip(seen.row, seen.col, strict=True)))
    fit = subprocess.run([str(venv / "bin" / "python"), str(PEERS / "cornac_model.py"), "--pairs", str(pairs),
                          "--out", str(tmp / "cornac"), "--epochs", str(a.cornac_epochs)],
                         capture_output=True, text=True)
    if fit.returncode != 0:
        sys.exit(f"cornac_model.py failed:\n{fit.stderr[-3000:]}")
    info = json.loads(fit.stdout.strip().splitlines()[-1])
    say(f"Cornac {info['cornac']}: BPR dim 64, {a.cornac_epochs} epochs on the run's {seen.nnz:,} train + valid pairs "
        f"({info['users']} users, {info['items']} items), fitted in {info['fit_seconds']:.1f} s")
    env = {**os.environ, "MODEL_PATH": info["model_path"], "MODEL_CLASS": info["model_class"],
           "PYTHONUNBUFFERED": "1"}
    log = open(tmp / "cornac-server.log", "wb")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen([str(venv / "bin" / "flask"), "--app", "cornac.serving.app", "run", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/recommend", params={"uid": str(users[0]), "k": 10,
                                                                         "remove_seen": "true"})
            if r.status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            break
    sys.exit(f"Cornac's server did not start:\n{(tmp / 'cornac-server.log').read_text()[-3000:]}")


def ann_section(a: argparse.Namespace, say: Report) -> dict[str, float]:
    """Exact top-10 by matrix product against faiss HNSW on a synthetic catalogue: recall@10 and latency."""
    import numpy as np
    import torch

    try:
        import faiss
    except ImportError:
        say("faiss: not installed (pip install 'graphrec[faiss]'); section skipped")
        return {}
    rng = np.random.default_rng(0)
    n, d, q = a.ann_items, 64, 200
    centers = rng.normal(size=(256, d)).astype(np.float32)
    items = (centers[rng.integers(0, 256, n)] + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
    users = (centers[rng.integers(0, 256, q)] + 0.5 * rng.normal(size=(q, d))).astype(np.float32)
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    it, ut = torch.from_numpy(items), torch.from_numpy(users)
    exact, t_exact = [], []
    for u in ut:
        t = time.perf_counter()
        exact.append(torch.topk(it @ u, 10).indices.numpy())
        t_exact.append(time.perf_counter() - t)
    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(items)
    build = time.perf_counter() - t
    index.hnsw.efSearch = a.ef_search
    approx, t_ann = [], []
    for u in users:
        t = time.perf_counter()
        approx.append(index.search(u[None], 10)[1][0])
        t_ann.append(time.perf_counter() - t)
    recall = float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(exact, approx, strict=True)]))
    say()
    say(f"## retrieval alone: {n:,} items x {d} dims, {q} queries, one thread")
    say(f"exact (torch matmul + topk): p50 {1000 * statistics.median(t_exact):.2f} ms")
    say(f"faiss HNSW (M 32, efSearch {a.ef_search}, built in {build:.0f} s): p50 {1000 * statistics.median(t_ann):.3f} ms, "
        f"recall@10 vs exact {recall:.3f}")
    return {"ann_items": n, "exact_p50_ms": 1000 * statistics.median(t_exact),
            "faiss_p50_ms": 1000 * statistics.median(t_ann), "faiss_recall_at_10": recall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=None, help="a finished ML-100K run (default: train experiments/ml100k-lightgcn.yaml once)")
    p.add_argument("--requests", type=int, default=4000, help="requests per /recommend phase (and per server)")
    p.add_argument("--mixed", type=int, default=4000, help="requests of the mixed 90/10 phase")
    p.add_argument("--slow", type=int, default=300, help="requests of the /explain and /search phases")
    p.add_argument("--clients", type=int, default=4, help="concurrent closed-loop clients")
    p.add_argument("--cap", type=float, default=120.0, help="seconds at most per phase")
    p.add_argument("--cornac-epochs", type=int, default=100)
    p.add_argument("--faiss", action="store_true", help="also time exact against faiss HNSW retrieval")
    p.add_argument("--ann-items", type=int, default=1_000_000)
    p.add_argument("--ef-search", type=int, default=64)
    p.add_argument("--cache", default=os.path.expanduser(os.environ.get("GRAPHREC_CACHE_DIR", "~/.cache/graphrec")))
    p.add_argument("--out", default=str(HERE / "results" / "bench_serve.txt"))
    a = p.parse_args()
    say = Report()
    say(f"# bench_serve: {' '.join(sys.argv[1:]) or '(defaults)'}")
    say(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    from graphrec.serve.process import ServerProcess, free_port

    run = trained_run(a, say)
    import graphrec

    deployed = graphrec.load(run)
    users = [int(u) for u in deployed.users.ids]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        served = tmp / "run"
        shutil.copytree(run, served, ignore=shutil.ignore_patterns("serving"))
        phases: dict[str, Phase] = {}
        checks: list[bool] = []
        with ServerProcess(served, options=["--threads", "1"]) as server:
            url = server.url

            async def rec(c: httpx.AsyncClient, n: int, rng: random.Random, ph: Phase) -> int | None:
                r = await timed(ph, c, "GET", "/recommend", params={"user": rng.choice(users), "k": 10})
                return r.status_code if r else None

            async def warm(c: httpx.AsyncClient, n: int, rng: random.Random) -> int | None:
                return await rec(c, n, rng, Phase("warm-up"))

            asyncio.run(closed_loop(Phase("warm-up"), a.clients, 300, a.cap, warm, url))
            ph = phases["recommend"] = Phase("graphrec GET /recommend")
            asyncio.run(closed_loop(ph, a.clients, a.requests, a.cap, lambda c, n, r: rec(c, n, r, ph), url, seed=1))

            ex = phases["explain"] = Phase("graphrec GET /explain")

            async def explain(c: httpx.AsyncClient, n: int, rng: random.Random) -> int | None:
                u = rng.choice(users)
                top = (await c.get("/recommend", params={"user": u, "k": 1})).json()["items"][0]["item"]
                r = await timed(ex, c, "GET", "/explain", params={"user": u, "item": top})
                return r.status_code if r else None

            asyncio.run(closed_loop(ex, a.clients, a.slow, a.cap, explain, url, seed=2))
            se = phases["search"] = Phase("graphrec GET /search (with a user)")

            async def search(c: httpx.AsyncClient, n: int, rng: random.Random) -> int | None:
                r = await timed(se, c, "GET", "/search", params={"q": rng.choice(QUERIES), "user": rng.choice(users),
                                                                 "k": 10})
                return r.status_code if r else None

            asyncio.run(closed_loop(se, a.clients, a.slow, a.cap, search, url, seed=3))
            mixed = phases["mixed"] = Phase("graphrec mixed 90% /recommend, 10% POST /events")
            writes = Phase("  of which POST /events")

            async def mix(c: httpx.AsyncClient, n: int, rng: random.Random) -> int | None:
                u = rng.choice(users)
                r = await timed(mixed, c, "GET", "/recommend", params={"user": u, "k": 10})
                if r is None or r.status_code != 200 or n % 9 != 0:
                    return None
                top = r.json()["items"][0]["item"]
                w = await timed(mixed, c, "POST", "/events", json=[{"user": u, "item": top}])
                if w is not None:
                    writes.add(mixed.latencies[-1], w.status_code)
                after = await timed(mixed, c, "GET", "/recommend", params={"user": u, "k": 10})
                if w is not None and w.status_code == 200 and after is not None and after.status_code == 200:
                    checks.append(top not in [x["item"] for x in after.json()["items"]])
                else:
                    checks.append(False)
                return None

            asyncio.run(closed_loop(mixed, a.clients, a.mixed * 9 // 11, a.cap, mix, url, seed=4))
            writes.seconds = mixed.seconds
            health = httpx.get(url + "/health").json()
            metrics_text = httpx.get(url + "/metrics").text
        peer: Phase | None = None
        port = free_port()
        proc = cornac_server(run, tmp, port, a, say)
        try:
            curl = f"http://127.0.0.1:{port}"

            async def corn(c: httpx.AsyncClient, n: int, rng: random.Random, ph: Phase) -> int | None:
                r = await timed(ph, c, "GET", "/recommend", params={"uid": str(rng.choice(users)), "k": 10,
                                                                     "remove_seen": "true"})
                return r.status_code if r else None

            asyncio.run(closed_loop(Phase("warm-up"), a.clients, 300, a.cap,
                                    lambda c, n, r: corn(c, n, r, Phase("warm-up")), curl))
            peer = Phase("Cornac GET /recommend (flask)")
            asyncio.run(closed_loop(peer, a.clients, a.requests, a.cap, lambda c, n, r: corn(c, n, r, peer), curl,
                                    seed=1))
        finally:
            os.killpg(proc.pid, 15)
            proc.wait()
    say()
    say(f"## load: {a.clients} closed-loop clients (httpx, asyncio) on this machine; graphrec serve with 1 worker "
        f"and 1 torch thread; {deployed.name}, {len(users)} users, {len(deployed.items)} items")
    say("| phase | requests | p50 ms | p95 ms | p99 ms | requests/s | 5xx | other non-2xx |")
    say("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for ph in (*phases.values(), writes, peer):
        if ph is not None:
            say(ph.row())
    rec_ph = phases["recommend"]
    ryw = sum(checks) / len(checks) if checks else float("nan")
    errors = sum(ph.errors_5xx for ph in phases.values())
    say()
    say(f"read-your-writes: {sum(checks)}/{len(checks)} writes were gone from the user's next list ({ryw:.3f}); "
        f"server state after the run: {health['events']} events")
    ratio_rps = rec_ph.rps / peer.rps if peer else float("nan")
    ratio_p99 = rec_ph.pct(0.99) / peer.pct(0.99) if peer else float("nan")
    say(f"graphrec / Cornac on /recommend: throughput {ratio_rps:.1f}x, p99 latency ratio {ratio_p99:.2f}")
    say(f"goals: p99 < 10 ms at >= 500 req/s: {'met' if rec_ph.pct(0.99) < 10 and rec_ph.rps >= 500 else 'MISSED'}; "
        f">= 5x Cornac at <= its p99: {'met' if ratio_rps >= 5 and ratio_p99 <= 1 else 'MISSED'}; "
        f"read-your-writes 100%: {'met' if ryw == 1 else 'MISSED'}; zero 5xx: {'met' if errors == 0 else 'MISSED'}")
    assert "graphrec_requests_total" in metrics_text
    ann = ann_section(a, say) if a.faiss else {}
    result = {"recommend_p50_ms": round(rec_ph.pct(0.5), 3), "recommend_p99_ms": round(rec_ph.pct(0.99), 3),
              "recommend_rps": round(rec_ph.rps, 1),
              "explain_p50_ms": round(phases["explain"].pct(0.5), 2), "search_p50_ms": round(phases["search"].pct(0.5), 2),
              "mixed_p99_ms": round(phases["mixed"].pct(0.99), 3), "mixed_rps": round(phases["mixed"].rps, 1),
              "cornac_p99_ms": round(peer.pct(0.99), 3) if peer else None,
              "cornac_rps": round(peer.rps, 1) if peer else None,
              "read_your_writes": ryw, "errors_5xx": errors, **{k: round(v, 4) for k, v in ann.items()}}
    say(json.dumps(result))
    say.save(Path(a.out))


if __name__ == "__main__":
    main()
