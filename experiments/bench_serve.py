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

A Python client spends about as much CPU per request as graphrec's server, so
on two cores it caps what it can measure. Where ``wrk`` is installed (Debian's
``wrk``: a C load generator, closed loop over ``--connections`` connections for
``--seconds``), the ``/recommend`` throughput of each server is measured with
it too (``--connections``, 16 by default: with two workers the kernel spreads
connections over them by their addresses, evenly only over many): graphrec
with one worker and with two (``--workers 2``; the workers share the event
log, and the mixed phase is repeated against them to check read-your-writes
across workers), Cornac's Flask server as shipped (one process; it has no
option for more).

With ``--faiss``, the retrieval step alone: exact top-10 by matrix product
against faiss HNSW (faiss-cpu) on a synthetic catalogue (``--ann-items``
64-d item vectors), its recall@10 against the exact lists and the latency of
each.

Goals (issue 13, this 2-core machine): ``/recommend`` p99 < 10 ms at >= 500
requests/s; >= 5x Cornac's throughput at an equal or lower p99; every
read-your-writes check holds; zero 5xx.

Usage: python experiments/bench_serve.py [--run RUN_DIR] [--requests 4000] [--clients 4] [--seconds 15] [--faiss]
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
from report import Report, peer_venv  # experiments/report.py: scripts run from this folder

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


WRK_SCRIPT = """
local users = {%(users)s}
fivexx = 0
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", string.format("%(path)s", users[math.random(#users)]))
end
response = function(status, headers, body)
  if status >= 500 then fivexx = fivexx + 1 end
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function(summary, latency, requests)
  local f = 0
  for _, t in ipairs(threads) do f = f + t:get("fivexx") end
  io.write(string.format('{"requests": %%d, "seconds": %%.3f, "p50": %%.4f, "p95": %%.4f, "p99": %%.4f, ' ..
    '"errors_5xx": %%d, "non_2xx": %%d, "socket_errors": %%d}\\n', summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3, f,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass
class WrkPhase:
    """One ``wrk`` run: request count over a fixed duration, latency percentiles (ms) and errors."""

    name: str
    result: dict[str, float]
    runs: list[float] = field(default_factory=list)  # requests/s of every repeat (the median one is ``result``)

    def pct(self, q: float) -> float:
        return float(self.result[f"p{round(q * 100)}"])

    @property
    def rps(self) -> float:
        return self.result["requests"] / self.result["seconds"]

    @property
    def errors_5xx(self) -> int:
        return int(self.result["errors_5xx"])

    def row(self) -> str:
        other = int(self.result["non_2xx"]) - self.errors_5xx + int(self.result["socket_errors"])
        runs = " / ".join(f"{r:,.0f}" for r in self.runs)
        return (f"| {self.name} | {int(self.result['requests'])} | {self.pct(0.5):.2f} | {self.pct(0.95):.2f} | "
                f"{self.pct(0.99):.2f} | {self.rps:,.0f} (median of {runs}) | {self.errors_5xx} | {other} |")


def wrk_phase(name: str, url: str, path: str, users: list[int], a: argparse.Namespace, tmp: Path,
              seed: int = 1) -> WrkPhase | None:
    """``path`` (``%s`` for the user) against ``url`` with wrk for ``--seconds``, ``--repeats`` times: the run of
    median throughput (with several server processes, how the kernel spreads the connections over them varies
    from run to run). None where wrk is missing."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = tmp / f"wrk-{seed}.lua"
    script.write_text(WRK_SCRIPT % {"users": ",".join(map(str, users)), "seed": seed, "path": path})
    results = []
    for _ in range(a.repeats):
        out = subprocess.run([wrk, "-t1", f"-c{a.connections}", f"-d{a.seconds}s", "-s", str(script), url],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"wrk failed: {out.stderr[-2000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    results.sort(key=lambda r: r["requests"] / r["seconds"])
    return WrkPhase(name, results[len(results) // 2], [r["requests"] / r["seconds"] for r in results])


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

    venv = Path(peer_venv("setup_cornac.sh"))
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
    log = open(tmp / "cornac-server.log", "wb")
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
    it, ut = torch.from_numpy(items), torch.from_numpy(users)
    exact, t_exact = [], []
    for u in ut:
        t = time.perf_counter()
        exact.append(torch.topk(it @ u, 10).indices.numpy())
        t_exact.append(time.perf_counter() - t)
    t = time.perf_counter()
    faiss.omp_set_num_threads(2)  # the build on both cores; the queries on one, as a server worker's
    index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(items)
    build = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
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
    say(f"faiss HNSW (M 32, efSearch {a.ef_search}, built in {build:.0f} s on 2 threads): p50 {1000 * statistics.median(t_ann):.3f} ms, "
        f"recall@10 vs exact {recall:.3f}")
    return {"ann_items": n, "exact_p50_ms": 1000 * statistics.median(t_exact),
            "faiss_p50_ms": 1000 * statistics.median(t_ann), "faiss_recall_at_10": recall}


def graphrec_phases(url: str, users: list[int], a: argparse.Namespace, label: str,
                    full: bool) -> tuple[dict[str, Phase], list[bool]]:
    """The httpx phases against one graphrec server: /recommend, (``full``) /explain and /search, and the mixed
    90/10 workload with its read-your-writes checks."""
    phases: dict[str, Phase] = {}
    checks: list[bool] = []

    async def rec(c: httpx.AsyncClient, n: int, rng: random.Random, ph: Phase) -> int | None:
        r = await timed(ph, c, "GET", "/recommend", params={"user": rng.choice(users), "k": 10})
        return r.status_code if r else None

    warm = Phase("warm-up")
    asyncio.run(closed_loop(warm, a.clients, 300, a.cap, lambda c, n, r: rec(c, n, r, warm), url))
    ph = phases["recommend"] = Phase(f"graphrec{label} GET /recommend")
    asyncio.run(closed_loop(ph, a.clients, a.requests, a.cap, lambda c, n, r: rec(c, n, r, ph), url, seed=1))
    if full:
        ex = phases["explain"] = Phase(f"graphrec{label} GET /explain")

        async def explain(c: httpx.AsyncClient, n: int, rng: random.Random) -> int | None:
            u = rng.choice(users)
            first = await timed(Phase("top-1"), c, "GET", "/recommend", params={"user": u, "k": 1})
            if first is None or first.status_code != 200:
                ex.add(0.0, first.status_code if first is not None else 599)
                return None
            top = first.json()["items"][0]["item"]
            r = await timed(ex, c, "GET", "/explain", params={"user": u, "item": top})
            return r.status_code if r else None

        asyncio.run(closed_loop(ex, a.clients, a.slow, a.cap, explain, url, seed=2))
        se = phases["search"] = Phase(f"graphrec{label} GET /search (with a user)")

        async def search(c: httpx.AsyncClient, n: int, rng: random.Random) -> int | None:
            r = await timed(se, c, "GET", "/search", params={"q": rng.choice(QUERIES), "user": rng.choice(users),
                                                             "k": 10})
            return r.status_code if r else None

        asyncio.run(closed_loop(se, a.clients, a.slow, a.cap, search, url, seed=3))
    mixed = phases["mixed"] = Phase(f"graphrec{label} mixed 90% /recommend, 10% POST /events")
    writes = phases["writes"] = Phase("  of which POST /events")

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
        ok = w is not None and w.status_code == 200 and after is not None and after.status_code == 200
        checks.append(ok and top not in [x["item"] for x in after.json()["items"]])  # type: ignore[union-attr]
        return None

    asyncio.run(closed_loop(mixed, a.clients, a.mixed * 9 // 11, a.cap, mix, url, seed=4))
    writes.seconds = mixed.seconds
    return phases, checks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=None, help="a finished ML-100K run (default: train experiments/ml100k-lightgcn.yaml once)")
    p.add_argument("--requests", type=int, default=4000, help="requests per httpx /recommend phase (and per server)")
    p.add_argument("--mixed", type=int, default=4000, help="requests of the mixed 90/10 phase")
    p.add_argument("--slow", type=int, default=300, help="requests of the /explain and /search phases")
    p.add_argument("--clients", type=int, default=4, help="concurrent closed-loop clients (httpx) / connections (wrk)")
    p.add_argument("--connections", type=int, default=16, help="wrk's connections (its closed-loop clients)")
    p.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    p.add_argument("--repeats", type=int, default=3, help="wrk runs per phase (the median is reported)")
    p.add_argument("--cap", type=float, default=120.0, help="seconds at most per httpx phase")
    p.add_argument("--cornac-epochs", type=int, default=100)
    p.add_argument("--faiss", action="store_true", help="also time exact against faiss HNSW retrieval")
    p.add_argument("--ann-items", type=int, default=1_000_000)
    p.add_argument("--ef-search", type=int, default=64)
    p.add_argument("--cache", default=os.path.expanduser(os.environ.get("GRAPHREC_CACHE_DIR", "~/.cache/graphrec")))
    p.add_argument("--out", default=str(HERE / "results" / "bench_serve.txt"))
    a = p.parse_args()
    say = Report()
    say(f"# bench_serve: {' '.join(sys.argv[1:]) or '(defaults)'}")
    say(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"wrk: {shutil.which('wrk') or 'not installed (apt-get install wrk): httpx phases only'}")
    from graphrec.serve.process import ServerProcess, free_port

    run = trained_run(a, say)
    import graphrec

    deployed = graphrec.load(run)
    users = [int(u) for u in deployed.users.ids]
    rows: list[Phase | WrkPhase] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        served = tmp / "run"
        shutil.copytree(run, served, ignore=shutil.ignore_patterns("serving"))
        with ServerProcess(served, options=["--threads", "1"]) as server:
            one, checks = graphrec_phases(server.url, users, a, "", full=True)
            wrk_one = wrk_phase("graphrec GET /recommend (wrk)", server.url, "/recommend?user=%s&k=10", users, a, tmp)
            health = httpx.get(server.url + "/health").json()
            metrics_text = httpx.get(server.url + "/metrics").text
        rows += [*one.values(), *([wrk_one] if wrk_one else [])]
        wrk_two, two_checks = None, []
        if wrk_one is not None:
            shutil.rmtree(served / "serving")
            with ServerProcess(served, options=["--threads", "1", "--workers", "2"]) as server:
                two, two_checks = graphrec_phases(server.url, users, a, " 2 workers", full=False)
                wrk_two = wrk_phase("graphrec 2 workers GET /recommend (wrk)", server.url, "/recommend?user=%s&k=10",
                                    users, a, tmp)
            rows += [two["mixed"], two["writes"], wrk_two]  # type: ignore[list-item]
        port = free_port()
        proc = cornac_server(run, tmp, port, a, say)
        try:
            curl = f"http://127.0.0.1:{port}"

            async def corn(c: httpx.AsyncClient, n: int, rng: random.Random, ph: Phase) -> int | None:
                r = await timed(ph, c, "GET", "/recommend", params={"uid": str(rng.choice(users)), "k": 10,
                                                                     "remove_seen": "true"})
                return r.status_code if r else None

            warm = Phase("warm-up")
            asyncio.run(closed_loop(warm, a.clients, 300, a.cap, lambda c, n, r: corn(c, n, r, warm), curl))
            peer = Phase("Cornac GET /recommend (flask)")
            asyncio.run(closed_loop(peer, a.clients, a.requests, a.cap, lambda c, n, r: corn(c, n, r, peer), curl,
                                    seed=1))
            wrk_peer = wrk_phase("Cornac GET /recommend (flask, wrk)", curl, "/recommend?uid=%s&k=10&remove_seen=true",
                                 users, a, tmp)
        finally:
            os.killpg(proc.pid, 15)
            proc.wait()
        rows += [peer, *([wrk_peer] if wrk_peer else [])]
    say()
    say(f"## load on this machine: httpx asyncio, {a.clients} closed-loop clients, a fixed number of requests; wrk, "
        f"{a.connections} connections, {a.seconds} s a run; graphrec serve with 1 torch thread per worker; "
        f"{deployed.name}, {len(users)} users, {len(deployed.items)} items")
    say("| phase | requests | p50 ms | p95 ms | p99 ms | requests/s | 5xx | other non-2xx |")
    say("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        say(row.row())
    all_checks = checks + two_checks
    ryw = sum(all_checks) / len(all_checks) if all_checks else float("nan")
    errors = sum(r.errors_5xx for r in rows if not r.name.startswith("Cornac"))
    say()
    say(f"read-your-writes: {sum(checks)}/{len(checks)} writes (1 worker) and {sum(two_checks)}/{len(two_checks)} "
        f"(2 workers, write and read on any worker) were gone from the user's next list; the 1-worker server held "
        f"{health['events']} events at the end")
    ours = wrk_two or wrk_one or one["recommend"]
    theirs = wrk_peer or peer
    base = wrk_one or one["recommend"]
    ratio_rps, ratio_p99 = ours.rps / theirs.rps, ours.pct(0.99) / theirs.pct(0.99)
    say(f"/recommend, graphrec / Cornac ({'wrk' if wrk_peer else 'httpx'}): 1 worker {base.rps / theirs.rps:.1f}x "
        f"the throughput at {base.pct(0.99) / theirs.pct(0.99):.2f}x the p99"
        + (f"; 2 workers {ratio_rps:.1f}x at {ratio_p99:.2f}x the p99" if wrk_two else "")
        + f"; with httpx clients: {one['recommend'].rps / peer.rps:.1f}x at "
          f"{one['recommend'].pct(0.99) / peer.pct(0.99):.2f}x the p99")
    say(f"goals: /recommend p99 < 10 ms at >= 500 req/s: {'met' if base.pct(0.99) < 10 and base.rps >= 500 else 'MISSED'} "
        f"(1 worker); >= 5x Cornac at <= its p99: {'met' if ratio_rps >= 5 and ratio_p99 <= 1 else 'MISSED'} "
        f"({'2 workers' if wrk_two else '1 worker'}); read-your-writes 100%: {'met' if ryw == 1 else 'MISSED'}; "
        f"zero 5xx: {'met' if errors == 0 else 'MISSED'}")
    assert "graphrec_requests_total" in metrics_text
    ann = ann_section(a, say) if a.faiss else {}
    result = {"recommend_p50_ms": round(ours.pct(0.5), 3), "recommend_p99_ms": round(ours.pct(0.99), 3),
              "recommend_rps": round(ours.rps, 1), "recommend_workers": 2 if wrk_two else 1,
              "recommend_rps_1_worker": round(base.rps, 1), "recommend_p99_ms_1_worker": round(base.pct(0.99), 3),
              "load_generator": "wrk" if wrk_one else "httpx",
              "explain_p50_ms": round(one["explain"].pct(0.5), 2), "search_p50_ms": round(one["search"].pct(0.5), 2),
              "events_p99_ms": round(one["writes"].pct(0.99), 2),
              "cornac_p99_ms": round(theirs.pct(0.99), 3), "cornac_rps": round(theirs.rps, 1),
              "read_your_writes": ryw, "errors_5xx": errors, **{k: round(v, 4) for k, v in ann.items()}}
    say(json.dumps(result))
    say.save(Path(a.out))


if __name__ == "__main__":
    main()
