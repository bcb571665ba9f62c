"""Sparse × dense products sized for the CPU's cache.

A propagation ``Â H`` over a large graph reads one row of ``H`` per
non-zero of ``Â``, in the order of the columns: random reads. While ``H``
fits in the CPU's last-level cache they are cheap; past it each one goes
to memory, and the step of a full-graph model grows faster than its edges
(``H`` is 54 MiB at 25M interactions and dim 64; the machine of
``experiments/bench_scale.py`` has a 32 MB L3).

:class:`ColumnBlocks` cuts ``Â`` into blocks of columns whose rows of
``H`` fit (:data:`BLOCK_BYTES` each) and sums the blocks' products into one
output (``addmm_``, no temporary): the same result up to float summation
order. ``python experiments/bench_scale.py`` measured the 25M LightGCN step
at 1.27 s with blocks against 3.06 s without (XSimGCL 0.92 s against
2.68 s). On a GPU the plain product is kept.

The blocks are a second copy of the matrix's entries (int32 column indices
and float32 values: 8 bytes per non-zero, 320 MB at 25M interactions, plus
one row-pointer array per block), kept beside it by the model that built
them (:meth:`graphrec.nn.LightGCN.product`) until it moves to another
device.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

#: bytes of the dense operand's rows that one column block reads (a quarter of a 32 MB L3, shared with the
#: matrix's own stream and the output); a matrix whose whole operand is smaller is not cut
BLOCK_BYTES = 8 << 20


class ColumnBlocks:
    """A sparse CSR matrix cut into blocks of consecutive columns; ``blocks @ h`` equals ``adj @ h``.

    Args:
        adj: Sparse CSR matrix ``[R, C]``.
        width: Columns per block (the last may have fewer).
    """

    def __init__(self, adj: Tensor, width: int) -> None:
        if adj.layout != torch.sparse_csr:
            raise ValueError(f"ColumnBlocks needs a sparse CSR matrix, got layout {adj.layout}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.shape = tuple(adj.shape)
        crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
        rows = self.shape[0]
        index = torch.int32 if col.numel() < 2**31 else torch.int64  # the blocks' own indices: half the bytes
        row = torch.repeat_interleave(torch.arange(rows, device=crow.device), crow.diff())
        block = torch.div(col, width, rounding_mode="floor")
        self.blocks: list[tuple[int, int, Tensor]] = []
        for b in range(math.ceil(self.shape[1] / width)):
            keep = block == b  # the row-major order within a block is the matrix's own
            b_crow = torch.zeros(rows + 1, dtype=index, device=crow.device)
            b_crow[1:] = torch.cumsum(torch.bincount(row[keep], minlength=rows), 0)
            lo, hi = b * width, min((b + 1) * width, self.shape[1])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                self.blocks.append((lo, hi, torch.sparse_csr_tensor(
                    b_crow, (col[keep] - lo).to(index), val[keep], (rows, hi - lo), check_invariants=False)))

    def __matmul__(self, h: Tensor) -> Tensor:
        if h.shape[0] != self.shape[1]:
            raise ValueError(f"shape mismatch: {list(self.shape)} @ {list(h.shape)}")
        if not self.blocks:  # no columns
            return h.new_zeros(self.shape[0], *h.shape[1:])
        (lo, hi, first), *rest = self.blocks
        out = first @ h[lo:hi]
        for lo, hi, block in rest:
            out.addmm_(block, h[lo:hi])
        return out

    def __repr__(self) -> str:
        return f"ColumnBlocks(shape={list(self.shape)}, blocks={len(self.blocks)})"


def cache_sized(adj: Tensor, dim: int, block_bytes: int | None = None) -> Tensor | ColumnBlocks:
    """What to multiply ``[adj.shape[1], dim]`` float32 matrices by: ``adj``, or its :class:`ColumnBlocks`.

    Blocks when ``adj`` is a sparse CSR matrix on the CPU whose float32 operand exceeds ``block_bytes``; the
    blocks are balanced, each reading about ``block_bytes`` (default :data:`BLOCK_BYTES`) of it.
    """
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    operand = adj.shape[1] * dim * 4
    if adj.layout != torch.sparse_csr or adj.device.type != "cpu" or operand <= block_bytes:
        return adj
    count = math.ceil(operand / block_bytes)
    return ColumnBlocks(adj, math.ceil(adj.shape[1] / count))
