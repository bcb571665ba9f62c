"""Matrix constructors every stage of the data's path uses (a neutral home: no stage imports another for them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch


def to_csr(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int) -> sp.csr_matrix:
    """Binary ``num_users × num_items`` matrix of (user, item) pairs (a pair given twice is still 1)."""
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(num_users, num_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def multihot(labels: pd.Series) -> torch.Tensor:
    """``[len(labels), num_labels]`` 0/1 matrix of each row's label list (genres...), labels in sorted order."""
    exploded = labels.explode().dropna()
    codes, _ = pd.factorize(exploded, sort=True)
    num = int(codes.max()) + 1 if len(codes) else 0
    out = torch.zeros(len(labels), num)
    rows = torch.from_numpy(exploded.index.to_numpy(np.int64, copy=True))
    out[rows, torch.from_numpy(codes.astype(np.int64))] = 1.0
    return out
