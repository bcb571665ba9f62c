"""graphrec: graph-based recommendation with GNNs, BERT text features and explanations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphrec.errors import ConfigError, DataFormatError, DatasetNotFoundError, GraphrecError, UnknownIdError

if TYPE_CHECKING:
    from graphrec.run.bundle import DeployedModel

__version__ = "0.1.0"


def load(run_dir: Any, device: Any = "cpu") -> DeployedModel:
    """A finished run directory as a deployed model (see :func:`graphrec.run.bundle.load`).

    Example:
        >>> model = graphrec.load("runs/demo-ml100k-lightgcn")
        >>> items, scores = model.recommend(196, k=10)
        >>> print(model.explain(196, items[0]).text())
    """
    from graphrec.run.bundle import load as _load

    return _load(run_dir, device)


__all__ = ["ConfigError", "DataFormatError", "DatasetNotFoundError", "GraphrecError", "UnknownIdError", "__version__",
           "load"]
