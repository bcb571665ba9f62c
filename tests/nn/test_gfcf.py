"""GF-CF against a dense reference of the paper's formula (as its official code computes it)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.errors import ConfigError
from graphrec.nn import GFCF


def dense_reference(r: np.ndarray, alpha: float, rank: int) -> np.ndarray:
    du, di = r.sum(1), r.sum(0)
    inv_u = np.where(du > 0, 1 / np.sqrt(np.maximum(du, 1e-12)), 0)
    inv_i = np.where(di > 0, 1 / np.sqrt(np.maximum(di, 1e-12)), 0)
    norm = inv_u[:, None] * r * inv_i[None, :]
    vt = np.linalg.svd(norm)[2][:rank]  # the leading right singular vectors
    ideal = np.diag(inv_i) @ vt.T @ vt @ np.diag(np.where(di > 0, 1 / np.maximum(inv_i, 1e-12), 0))
    return r @ (norm.T @ norm + alpha * ideal)


def test_scores_equal_the_dense_formula():
    rng = np.random.default_rng(0)
    r = (rng.random((30, 12)) < 0.3).astype(float)
    r[:, 11] = 0  # an item nobody has: scored 0 by the ideal filter, not inf
    m = GFCF(30, 12, alpha=0.3, rank=4).fit(sp.csr_matrix(r))
    np.testing.assert_allclose(m.score_all(torch.arange(30)).numpy(), dense_reference(r, 0.3, 4), rtol=1e-4, atol=1e-5)
    # a new user: the same filter applied to their history
    torch.testing.assert_close(m.score_history(torch.tensor([0, 3])), m.filter(torch.tensor([[1.0, 0, 0, 1] + [0] * 8]))[0])


def test_rank_must_leave_the_matrix_room():
    with pytest.raises(ConfigError, match=r"rank must be in \[1, min\(users, items\)\) = \[1, 12\), got 12"):
        GFCF(30, 12, rank=12)


def bspm_reference(r: np.ndarray, rank: int, beta: float, t_s: float) -> np.ndarray:
    """The official code's CPU path with its defaults: Euler steps of 1 for ideal and blur, one RK4 step of T_s."""
    du, di = r.sum(1), r.sum(0)
    inv_u = np.where(du > 0, 1 / np.sqrt(np.maximum(du, 1e-12)), 0)
    inv_i = np.where(di > 0, 1 / np.sqrt(np.maximum(di, 1e-12)), 0)
    norm = inv_u[:, None] * r * inv_i[None, :]
    vt = np.linalg.svd(norm)[2][:rank]
    p = norm.T @ norm
    ideal = np.diag(inv_i) @ vt.T @ vt @ np.diag(np.where(di > 0, 1 / np.maximum(inv_i, 1e-12), 0))
    idl = r + 1.0 * (r @ ideal - r)
    blur = r + 1.0 * (r @ p - r)
    y = blur + beta * idl
    f = lambda z: -z @ p  # noqa: E731
    k1 = f(y)
    k2 = f(y + t_s / 2 * k1)
    k3 = f(y + t_s / 2 * k2)
    k4 = f(y + t_s * k3)
    return y + t_s / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def test_bspm_equals_the_official_process():
    from graphrec.nn import BSPM

    rng = np.random.default_rng(1)
    r = (rng.random((25, 14)) < 0.3).astype(float)
    m = BSPM(25, 14, rank=5, idl_beta=0.2, t_s=2.5).fit(sp.csr_matrix(r))
    np.testing.assert_allclose(m.score_all(torch.arange(25)).numpy(), bspm_reference(r, 5, 0.2, 2.5),
                               rtol=1e-4, atol=1e-5)
