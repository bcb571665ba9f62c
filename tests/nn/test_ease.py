"""EASE: the closed form checked column by column, and a clear memory error."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.errors import GraphrecError
from graphrec.nn import EASE
from graphrec.nn.ease import ease_weights, fit_memory


def test_closed_form_equals_the_constrained_ridge_per_column():
    rng = np.random.default_rng(0)
    x = (rng.random((12, 6)) < 0.4).astype(float)
    lam = 2.0
    b = ease_weights(sp.csr_matrix(x), lam)
    for j in range(6):
        others = [i for i in range(6) if i != j]
        xo = x[:, others]
        # with diag(B) = 0, column j is the ridge regression of x_j on the other columns
        col = np.linalg.solve(xo.T @ xo + lam * np.eye(5), xo.T @ x[:, j])
        np.testing.assert_allclose(b[others, j], col, rtol=1e-5, atol=1e-6)
        assert b[j, j] == 0


def test_scores_are_history_times_weights():
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1]], dtype=np.float32))
    m = EASE(3, 4, reg=1.0).fit(x)
    torch.testing.assert_close(m.score_all(torch.tensor([1])), torch.from_numpy(x[1].toarray()) @ m.weight)
    torch.testing.assert_close(m.score_history(torch.tensor([1, 2])), m.score_all(torch.tensor([1]))[0])


def test_too_large_a_catalogue_is_refused_with_what_fits():
    m = EASE(2, 50_000, memory_gb=1.0)
    assert fit_memory(50_000) == 40_000_000_000
    with pytest.raises(GraphrecError, match=r"EASE on 50,000 items needs about 40\.0 GB to fit .* but 1\.0 GB is "
                                            r"allowed \(model\.memory_gb\); the largest catalogue that fits is about "
                                            r"7,905 items"):
        m.fit(sp.csr_matrix((2, 50_000), dtype=np.float32))
