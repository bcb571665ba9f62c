"""How many CPU threads graphrec's torch work uses, chosen on purpose.

torch's intra-op pool defaults to one thread per core, and its OpenMP threads
spin while they wait. On a machine where another job already runs, that
oversubscribes the cores: a LightGCN epoch beside one CPU-bound process on a
2-core machine was reported at 20-35 s against 0.18 s quiet. graphrec sets
torch's intra-op thread count explicitly instead: ``threads="auto"`` takes
the cores this process may run on that no other process is using when the run
starts (:func:`idle_cpus`), at least one.

``OMP_WAIT_POLICY=PASSIVE`` (threads sleep instead of spinning) would also
guard against load that arrives mid-run, but it doubled the quiet epoch in
``experiments/bench_threads.py``, so graphrec leaves it to the user's
environment.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import TYPE_CHECKING

from graphrec.errors import ConfigError

if TYPE_CHECKING:
    import torch


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, or the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _runnable_others() -> int | None:
    """Runnable threads on the machine now, other than the one reading (Linux ``/proc/loadavg``)."""
    try:
        with open("/proc/loadavg") as fh:
            running = int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - 1)


def idle_cpus(samples: int = 5, interval: float = 0.01) -> int:
    """Cores free for this process: its CPUs minus the other runnable threads (median of a few samples), >= 1."""
    cpus = available_cpus()
    seen = []
    for i in range(samples):
        n = _runnable_others()
        if n is None:
            return cpus
        seen.append(n)
        if i + 1 < samples:
            time.sleep(interval)
    return max(1, cpus - int(statistics.median(seen)))


def resolve_threads(threads: int | str) -> int:
    """``"auto"`` → :func:`idle_cpus`; an int >= 1 is taken as it is.

    Raises:
        ConfigError: anything else.
    """
    if threads == "auto":
        return idle_cpus()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be 'auto' or an integer >= 1, got {threads!r}")
    return threads


def set_threads(threads: int | str) -> int:
    """Set torch's intra-op thread count; returns the number set."""
    import torch  # not at the top: the CLI imports this module before torch loads

    n = resolve_threads(threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_ALLOCATOR_KEEP = 1 << 30
_allocator_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks up to 1 GiB for reuse instead of unmapping them.

    glibc serves blocks above its mmap threshold (128 KiB, growing with the
    blocks it sees freed) with fresh ``mmap`` pages and returns them on
    ``free``, so a training step that allocates and frees the same
    ``[nodes, dim]`` tensors every batch pays page faults to zero them again
    each time: a Gowalla-size LightGCN epoch (1 thread, a loaded machine)
    took 88 s with glibc's defaults and 73 s with freed memory kept, and
    RecBole's 157 s and 132 s (``experiments/bench_epoch_scale.py``,
    ``--without-keep-freed`` and ``--recbole-keep-freed``). This raises the
    mmap and trim thresholds to 1 GiB for the process, the effect of
    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``; the cost is that
    freed memory stays with the process until it exits. The trainer calls it
    on the CPU; ``GRAPHREC_KEEP_FREED_MEMORY=0`` turns it off, and it does
    nothing where the C library is not glibc. Returns whether it is on.
    """
    global _allocator_tuned
    if _allocator_tuned is not None:
        return _allocator_tuned
    _allocator_tuned = False
    if os.environ.get("GRAPHREC_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    _allocator_tuned = bool(mallopt(_M_MMAP_THRESHOLD, _ALLOCATOR_KEEP)) and bool(mallopt(_M_TRIM_THRESHOLD, _ALLOCATOR_KEEP))
    return _allocator_tuned


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` / None → CUDA when available, else CPU."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux ``MemAvailable``); None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None
