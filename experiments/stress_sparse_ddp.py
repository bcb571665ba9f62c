"""How often three gloo ranks training row-sparse embedding tables crash, by the way their gradients are averaged.

CI failed twice on ``tests/distributed`` (``mf-bpr-sparse``, 3 ranks): a rank
died inside ``loss.backward()`` with ``malloc(): unaligned tcache chunk
detected`` or SIGSEGV. This script repeats a small MF-BPR-like training (two
``nn.Embedding(sparse=True)`` tables, BPR loss, ``SparseAdam``, batches of 1-3
pairs per rank) as ``--ranks`` processes, ``--runs`` times per variant, and
counts the runs where a rank did not exit cleanly:

- ``ddp``: the tables inside ``DistributedDataParallel`` (its reducer starts
  gloo's sparse all-reduce from the backward pass), the way graphrec trained
  them before; ``destroy_process_group`` right after the last step.
- ``graphrec-no-wait``: graphrec's own averaging
  (:func:`graphrec.distributed.average_sparse_gradients`: dense all-gathers
  of each rank's rows and values) after the backward pass; still no wait
  before ``destroy_process_group``.
- ``graphrec``: that averaging, and :func:`graphrec.distributed.destroy`
  (every rank waits for the others before the teardown): what graphrec does.

For each failed run it prints where the rank died (during the steps, or after
all of them, at the teardown) and the first line of the C++ error.

Usage: python experiments/stress_sparse_ddp.py [--runs 10] [--steps 3000] [--ranks 3] [--out FILE]
Last line: {"runs": ..., "steps": ..., "ranks": ..., "failed": {"ddp": ..., "graphrec-no-wait": ..., "graphrec": ...}}
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("ddp", "graphrec-no-wait", "graphrec")


def rank_main(variant: str, steps: int) -> None:
    """One rank (started by graphrec.distributed.launch, which sets RANK and WORLD_SIZE)."""
    import torch
    import torch.distributed as dist

    from graphrec import distributed

    torch.set_num_threads(1)
    world = distributed.init(torch.device("cpu"))

    class MF(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.users = torch.nn.Embedding(60, 16, sparse=True)
            self.items = torch.nn.Embedding(80, 16, sparse=True)

        def forward(self, u: torch.Tensor, p: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
            diff = (self.users(u) * (self.items(p) - self.items(n))).sum(-1)
            return -torch.nn.functional.logsigmoid(diff).mean()

    torch.manual_seed(0)
    model = MF()
    params = list(model.parameters())
    step_fn: torch.nn.Module = model
    if variant == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        step_fn = DistributedDataParallel(model)
    else:
        distributed.broadcast_parameters(params, world)
    optimizer = torch.optim.SparseAdam(params, lr=0.01)
    gen = torch.Generator().manual_seed(world.rank)
    for _ in range(steps):
        k = int(torch.randint(1, 4, (1,), generator=gen))
        u, p, n = (torch.randint(0, size, (k,), generator=gen) for size in (60, 80, 80))
        loss = step_fn(u, p, n)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if variant != "ddp":
            distributed.average_sparse_gradients(params, world)
        optimizer.step()
    print(f"steps done: rank {world.rank}", flush=True)
    if variant == "graphrec":
        distributed.destroy()
    else:
        dist.destroy_process_group()


def one_run(variant: str, steps: int, ranks: int) -> tuple[bool, str]:
    """Whether every rank exited cleanly, and if not: where and how a rank died."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.txt"
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        with open(log, "w") as fh:
            code = subprocess.call([sys.executable, "-c", (
                "import sys; from graphrec.distributed import launch; "
                f"sys.exit(launch([sys.executable, {str(Path(__file__).resolve())!r}, '--rank-of', "
                f"{variant!r}, '--steps', '{steps}'], {ranks}))")], env=env, stdout=fh, stderr=subprocess.STDOUT)
        text = log.read_text(errors="replace")
    if code == 0:
        return True, ""
    done = text.count("steps done:")
    where = "after every rank's last step (teardown)" if done == ranks else f"during the steps ({done} ranks done)"
    errors = [line.strip() for line in text.splitlines()
              if any(s in line for s in ("malloc", "terminate called", "SIGSEGV", "SIGABRT", "Segmentation"))]
    return False, f"{where}: {errors[0] if errors else f'exit {code}'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--ranks", type=int, default=3)
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--out", default=str(REPO / "experiments" / "results" / "stress_sparse_ddp.txt"))
    ap.add_argument("--rank-of", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank_of:
        rank_main(args.rank_of, args.steps)
        return
    import torch

    lines = [f"# python experiments/stress_sparse_ddp.py --runs {args.runs} --steps {args.steps} --ranks {args.ranks}",
             f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
             f"{os.cpu_count()} CPUs, gloo"]
    failed: dict[str, int] = {}
    for variant in args.variants:
        failed[variant] = 0
        for i in range(args.runs):
            ok, why = one_run(variant, args.steps, args.ranks)
            if not ok:
                failed[variant] += 1
                lines.append(f"{variant} run {i + 1}: failed {why}")
                print(lines[-1], flush=True)
        lines.append(f"{variant}: {failed[variant]} of {args.runs} runs failed")
        print(lines[-1], flush=True)
    summary = json.dumps({"runs": args.runs, "steps": args.steps, "ranks": args.ranks, "failed": failed})
    lines.append(summary)
    print(summary)
    from graphrec.fs import atomic_write_text

    atomic_write_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
