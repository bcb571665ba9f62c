"""Data-parallel training and evaluation over ``torch.distributed``: the world, the shards, the collectives.

One graphrec run becomes N processes (ranks) the way ``torchrun`` starts
them: each reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and
``MASTER_ADDR`` / ``MASTER_PORT``) from its environment. Every rank loads
the same data and builds the same graph (the graph is replicated); each
global BPR batch is cut into one contiguous shard per rank, and
``DistributedDataParallel`` averages the gradients, with each shard's loss
weighted by its share of the batch, so that a step equals the one-process
step on the whole batch up to float summation order. The full-ranking
evaluation deals its user batches out to the ranks and gathers the top-K
lists (:mod:`graphrec.eval.evaluator`); rank 0 alone writes the run
directory.

Backend: gloo on the CPU, NCCL on CUDA (one GPU per local rank). A rank that
dies makes the others' next collective fail (gloo and NCCL see the closed
connection); a rank that stops answering makes it fail after
``GRAPHREC_DIST_TIMEOUT`` seconds (default 1800). :func:`launch` (``graphrec
run --nproc N``) also stops the other ranks as soon as one fails.
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


def active_world() -> World:
    """The world of the process group this process has joined; one rank when it has joined none."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), *_local(dist.get_rank(), dist.get_world_size()))
    return World()


def _local(rank: int, size: int) -> tuple[int, int]:
    return _env_int("LOCAL_RANK", rank), _env_int("LOCAL_WORLD_SIZE", size)


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
        torch.cuda.set_device(world.local_rank)
    timeout = timedelta(seconds=_env_int("GRAPHREC_DIST_TIMEOUT", 1800))
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=timeout)
    return world


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

    t = torch.tensor(list(values), dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def barrier(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def on_main(fn: Callable[[], T], world: World) -> T | None:
    """Run ``fn`` on rank 0 only; a GraphrecError it raises is raised on every rank (with rank 0's message).

    Returns ``fn()``'s result on rank 0 and None elsewhere.
    """
    result, error = None, None
    if world.is_main:
        try:
            result = fn()
        except GraphrecError as exc:
            error = exc
    message = broadcast(None if error is None else (type(error), str(error)), world)
    if error is not None:
        raise error
    if message is not None:
        kind, text = message
        raise kind(text)
    return result


def wrap(model: torch.nn.Module, device: torch.device, world: World, find_unused: bool = False) -> torch.nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` (as it is for one process).

    The model's buffers (the normalised adjacency, index arrays) are the
    replicated graph, built identically on every rank: DDP neither
    broadcasts them at the start nor before each step. Parameters are
    broadcast from rank 0 once.
    """
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    DDP._set_params_and_buffers_to_ignore_for_model(model, [name for name, _ in model.named_buffers()])
    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
               find_unused_parameters=find_unused)


def destroy() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------- launching


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def launch(command: Sequence[str], nproc: int, env: dict[str, str] | None = None, grace: float = 10.0,
           on_failure: str = "") -> int:
    """Run ``command`` as ``nproc`` ranks on this machine (what ``torchrun --nproc-per-node N`` does).

    Each rank gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
    ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. When a rank
    fails, the others are stopped (SIGTERM, then SIGKILL after ``grace``
    seconds), a line names the rank and how it ended (plus ``on_failure``),
    and its status is returned; 0 when every rank succeeds.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    base = {**os.environ, **(env or {}), "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    procs = [subprocess.Popen(list(command), env={**base, "RANK": str(r), "LOCAL_RANK": str(r)})
             for r in range(nproc)]
    failed: tuple[int, int] | None = None
    try:
        while True:
            codes = [p.poll() for p in procs]
            bad = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            if bad:
                failed = bad[0]
                break
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.1)
    except KeyboardInterrupt:
        failed = (-1, 130)
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
    rank, code = failed
    if rank >= 0:
        print(f"error: rank {rank} (pid {procs[rank].pid}) {_describe(code)}; the other ranks were stopped"
              + (f". {on_failure}" if on_failure else ""), file=sys.stderr)
    return code if code > 0 else 128 - code if code < 0 else 1
