"""Data-parallel training and evaluation over ``torch.distributed``: the world, the shards, the collectives.

One graphrec run becomes N processes (ranks) the way ``torchrun`` starts
them: each reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and
``MASTER_ADDR`` / ``MASTER_PORT``) from its environment. Every rank loads
the same data and builds the same graph (the graph is replicated); each
global BPR batch is cut into one contiguous shard per rank, and
``DistributedDataParallel`` averages the gradients (graphrec averages
``sparse_adam``'s row-sparse ones itself: :func:`average_sparse_gradients`),
with each shard's loss weighted by its share of the batch, so that a step equals the one-process
step on the whole batch up to float summation order. The full-ranking
evaluation deals its user batches out to the ranks and gathers the top-K
lists (:mod:`graphrec.eval.evaluator`); rank 0 alone writes the run
directory.

Backend: gloo on the CPU, NCCL on CUDA (one GPU per local rank). The run
directory must be on a filesystem every rank sees (checkpoints are written by
rank 0 and read back by rank 0, which broadcasts them). When a rank dies,
:func:`launch` (``graphrec run --nproc N``) and torchrun stop the others at
once; without a launcher, gloo fails the survivors' next collective (the
connection closes), and NCCL or a rank that stops answering fails it after
``GRAPHREC_DIST_TIMEOUT`` seconds (default 1800).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch

from graphrec.errors import ConfigError, GraphrecError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """Where this process stands among the ranks of a run.

    Attributes:
        rank: This process's rank, ``0 <= rank < size``.
        size: Number of ranks (1: no distribution).
        local_rank: Rank on this node (picks the GPU).
        local_size: Ranks on this node (share its CPU cores).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def current_world() -> World:
    """The world the environment describes (torchrun's variables); one rank without them."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    local_size = _env_int("LOCAL_WORLD_SIZE", size)
    if size < 1 or not 0 <= rank < size:
        raise ConfigError(f"RANK={rank}, WORLD_SIZE={size}: expected 0 <= RANK < WORLD_SIZE")
    if not 0 <= local_rank < local_size:
        raise ConfigError(f"LOCAL_RANK={local_rank}, LOCAL_WORLD_SIZE={local_size}: expected "
                          "0 <= LOCAL_RANK < LOCAL_WORLD_SIZE")
    return World(rank, size, local_rank, local_size)


def init(device: torch.device) -> World:
    """Join the process group of a multi-process run (once; nothing for one process).

    gloo for the CPU, NCCL for CUDA, where each rank takes GPU ``LOCAL_RANK``.
    """
    import torch.distributed as dist

    world = current_world()
    if not world.distributed or dist.is_initialized():
        return world
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ConfigError(f"WORLD_SIZE={world.size} but {name} is not set: start the ranks with "
                              "graphrec run --nproc N, or torchrun")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(rank_device(device, world))
    timeout = timedelta(seconds=_env_int("GRAPHREC_DIST_TIMEOUT", 1800))
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=timeout)
    return world


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own random stream, for draws a rank makes for its shard alone.

    Rank 0 keeps ``seed`` (a one-process run's stream); rank ``r > 0`` takes a
    seed derived from ``(seed, r)`` by :class:`numpy.random.SeedSequence`, so
    no two ranks draw the same sequence.

    Raises:
        ValueError: ``rank`` is negative.
    """
    if rank < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    if rank == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed & (2**64 - 1), rank]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def rank_device(device: torch.device, world: World) -> torch.device:
    """A rank's device: ``cuda:LOCAL_RANK`` for CUDA in a multi-process run, else ``device``."""
    if device.type == "cuda" and world.distributed:
        if world.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"rank {world.rank}: LOCAL_RANK {world.local_rank} but this node has "
                              f"{torch.cuda.device_count()} CUDA devices; start at most one rank per GPU")
        return torch.device("cuda", world.local_rank)
    return device


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``[lo, hi)`` of rank ``rank``'s contiguous shard of ``n`` items; sizes differ by at most one.

    >>> [shard_bounds(5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    """
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def broadcast(value: T, world: World) -> T:
    """Rank 0's ``value`` on every rank (a picklable object)."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather(value: T, world: World) -> list[T]:
    """Every rank's ``value``, in rank order (a picklable object)."""
    if not world.distributed:
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, value)
    return out


def all_sum(values: Sequence[float], world: World) -> list[float]:
    """The element-wise sum over ranks of a few floats (float64)."""
    if not world.distributed:
        return list(values)
    import torch.distributed as dist

    # NCCL reduces device tensors only
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


class RankError(GraphrecError):
    """An error rank 0 raised in work only it does (:func:`on_main`), raised again on the other ranks."""

    collective = True


def on_main(fn: Callable[[], T], world: World) -> T:
    """Run ``fn`` on rank 0 only and return its result on every rank; whatever it raises is raised on every rank,
    so none waits for rank 0 forever (the other ranks raise :class:`RankError` with rank 0's message).

    What ``fn`` returns (a checkpoint's state, a decision) is sent to the other ranks: they agree on it even
    where a filesystem shows them different files (a node without the file, a stale network cache).
    """
    result, error = None, None
    if world.is_main:
        try:
            result = fn()
        except BaseException as exc:  # re-raised below, after the others are told
            error = exc
    if world.distributed:
        message = None if error is None else str(error) if isinstance(error, GraphrecError) else \
            f"{type(error).__name__}: {error}"
        result, message = broadcast((result, message), world)
        if error is None and message is not None:
            raise RankError(message)
    if error is not None:
        if isinstance(error, GraphrecError):
            error.collective = True  # type: ignore[attr-defined]
        raise error
    return result  # type: ignore[return-value]


def rank_threads(threads: int | str, world: World) -> int | str:
    """A rank's torch threads: ``"auto"`` on a node running several ranks shares its cores among them."""
    if threads == "auto" and world.local_size > 1:
        from graphrec.runtime import available_cpus

        return max(1, available_cpus() // world.local_size)
    return threads


def wrap(model: torch.nn.Module, device: torch.device, world: World, find_unused: bool = False) -> torch.nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` (as it is for one process), unless all its
    parameters are row-sparse tables: then the caller averages their gradients (see below).

    The model's buffers (the normalised adjacency, index arrays) are the
    replicated graph, built identically on every rank: DDP neither
    broadcasts them at the start nor before each step. Parameters are
    broadcast from rank 0 once.

    A model whose parameters all take row-sparse gradients (embedding tables
    with ``sparse=True``, trained with ``sparse_adam``) is not wrapped: DDP's
    sparse path (gloo's sparse all-reduce started from its reducer inside
    the backward pass) corrupts the heap under torch 2.13 (``malloc():
    unaligned tcache chunk detected``, or SIGSEGV): in 8 of 10 three-rank
    runs of 3,000 small steps (``python experiments/stress_sparse_ddp.py``).
    Its parameters are broadcast here, and the trainer averages their
    gradients after the backward pass with :func:`average_sparse_gradients`.
    """
    if not world.distributed:
        return model
    sparse = row_sparse_parameters(model)
    if sparse:
        broadcast_parameters(sparse, world)
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    DDP._set_params_and_buffers_to_ignore_for_model(model, [name for name, _ in model.named_buffers()])
    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
               find_unused_parameters=find_unused)


def row_sparse_parameters(model: torch.nn.Module) -> list[torch.Tensor]:
    """``model``'s trainable parameters if every one is a table with row-sparse gradients (an embedding with
    ``sparse=True``), else ``[]``: the models :func:`wrap` leaves out of DDP."""
    params: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    tables = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse}
    return params if params and all(id(p) in tables for p in params) else []


def broadcast_parameters(params: Sequence[torch.Tensor], world: World) -> None:
    """Rank 0's values of ``params`` on every rank, in place."""
    if not world.distributed:
        return
    import torch.distributed as dist

    with torch.no_grad():
        for p in params:
            dist.broadcast(p.data, src=0)


def average_sparse_gradients(params: Sequence[torch.Tensor], world: World) -> None:
    """Replace each parameter's row-sparse gradient by its mean over the ranks (what DDP does for dense ones).

    Each rank's rows and values are gathered with dense collectives, padded
    to the largest rank's count, then summed row by row (``coalesce``) and
    divided by the number of ranks. Every rank must call this for the same
    parameters in the same order; a parameter the step did not reach (no
    gradient) counts as an empty gradient.
    """
    if not world.distributed:
        return
    import torch.distributed as dist

    for p in params:
        rows_shape = p.shape[1:]
        if p.grad is None:
            rows = torch.empty(0, dtype=torch.int64, device=p.device)
            values = torch.empty((0, *rows_shape), dtype=p.dtype, device=p.device)
        else:
            if not p.grad.is_sparse:
                raise GraphrecError(f"average_sparse_gradients: a parameter of shape {tuple(p.shape)} has a dense "
                                    "gradient; dense gradients are averaged by DistributedDataParallel")
            grad = p.grad.coalesce()
            rows, values = grad.indices()[0], grad.values()
        count = torch.tensor([len(rows)], dtype=torch.int64, device=p.device)
        counts = [torch.empty_like(count) for _ in range(world.size)]
        dist.all_gather(counts, count)
        sizes = [int(c) for c in counts]
        longest = max(sizes)
        if longest == 0:  # no rank reached it: no gradient, as in one process (SparseAdam then skips it)
            p.grad = None
            continue
        padded_rows = torch.zeros(longest, dtype=torch.int64, device=p.device)
        padded_rows[:len(rows)] = rows
        padded_values = torch.zeros((longest, *rows_shape), dtype=p.dtype, device=p.device)
        padded_values[:len(values)] = values
        all_rows = [torch.empty_like(padded_rows) for _ in range(world.size)]
        all_values = [torch.empty_like(padded_values) for _ in range(world.size)]
        dist.all_gather(all_rows, padded_rows)
        dist.all_gather(all_values, padded_values)
        rows = torch.cat([r[:n] for r, n in zip(all_rows, sizes, strict=True)])
        values = torch.cat([v[:n] for v, n in zip(all_values, sizes, strict=True)])
        # the rows come from valid gradients: no invariant check (and no warning about skipping it)
        total = torch.sparse_coo_tensor(rows.unsqueeze(0), values, p.shape, check_invariants=False).coalesce()
        p.grad = total / world.size


def destroy() -> None:
    """End this rank's part in the run, once every rank has finished its work (call it on success only).

    The ranks wait for each other first: gloo tearing down its connections
    while a peer is still finishing its last collective aborted a rank at
    exit (``terminate called without an active exception``) in 3 of 10
    three-rank runs ending on all-gathers, and in none of 10 with the wait
    (``python experiments/stress_sparse_ddp.py``).
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# ---------------------------------------------------------------- launching


def free_port() -> int:
    """A TCP port free on every interface now (the rendezvous binds them all)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


#: the status of a rank that only lost contact with a failed one (graphrec.cli): never the first cause
LOST_CONTACT = 3
#: how a rank can end because another failed: its lost-contact status, or an abort inside the collective
#: library (gloo may abort a process whose peer vanished mid-collective)
SECONDARY = (LOST_CONTACT, -int(signal.SIGABRT))
#: seconds the launcher waits, after a rank lost contact, for the rank that failed to end
LOST_CONTACT_WAIT = 5.0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the rank gets SIGTERM when the launcher dies, so no rank outlives it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Stop(Exception):
    pass


def launch(command: Sequence[str], nproc: int, env: dict[str, str] | None = None, grace: float = 10.0) -> int:
    """Run ``command`` as ``nproc`` ranks on this machine (what ``torchrun --nproc-per-node N`` does).

    Each rank gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
    ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` and, unless set,
    ``OMP_NUM_THREADS`` (the cores divided among the ranks). When a rank
    fails, the others are stopped (SIGTERM, then SIGKILL after ``grace``
    seconds) and a line names the rank that failed first and how it ended; a
    rank that merely lost contact with it (status 3, or an abort in the
    collective library) is named only when no other rank failed. So
    are the ranks when the launcher gets SIGTERM, SIGHUP or Ctrl-C (and, on
    Linux, when it dies). Returns 0 when every rank succeeds, else the failed
    rank's status (128 + N for a signal N).
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    base = {**os.environ, **(env or {}), "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    base.setdefault("OMP_NUM_THREADS", str(rank_threads("auto", World(0, nproc, 0, nproc))))

    def stop(signum: int, _frame: Any) -> None:
        raise _Stop(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    procs: list[subprocess.Popen[bytes]] = []
    failures: list[tuple[int, int]] = []
    first_failure: float | None = None
    interrupted: int | None = None
    try:
        for r in range(nproc):
            procs.append(subprocess.Popen(list(command), env={**base, "RANK": str(r), "LOCAL_RANK": str(r)},
                                          preexec_fn=_die_with_parent if sys.platform == "linux" else None))
        while True:
            for r, p in enumerate(procs):
                code = p.poll()
                if code not in (None, 0) and all(r != f for f, _ in failures):
                    failures.append((r, code))
            if failures:
                first_failure = first_failure or time.monotonic()
                # a rank that only lost contact: give the rank that failed time to end and be named
                if (any(code not in SECONDARY for _, code in failures)
                        or time.monotonic() - first_failure > LOST_CONTACT_WAIT):
                    break
            if all(p.poll() == 0 for p in procs):
                return 0
            time.sleep(0.1)
    except KeyboardInterrupt:
        interrupted = int(signal.SIGINT)
    except _Stop as exc:
        interrupted = int(exc.args[0])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    if interrupted is not None:
        print(f"error: stopped by {signal.Signals(interrupted).name}; the ranks were stopped", file=sys.stderr)
        return 128 + interrupted
    # the first cause: a rank that did not merely lose contact, among those seen failing first
    rank, code = next((f for f in failures if f[1] not in SECONDARY), failures[0])
    print(f"error: rank {rank} (pid {procs[rank].pid}) {_describe(code)}; the other ranks were stopped",
          file=sys.stderr)
    return code if code > 0 else 128 - code
