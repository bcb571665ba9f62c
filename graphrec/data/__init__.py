"""Loading, validating and splitting interaction data.

The data's path: a loader (:func:`load_movielens`, :func:`load_interactions`,
:func:`load_lightgcn_format`) gives a validated :class:`Dataset`;
:mod:`~graphrec.data.preprocess` filters it; :mod:`~graphrec.data.split` cuts
it into a leak-free :class:`Split`.
"""

from graphrec.data.dataset import Dataset, Interactions
from graphrec.data.formats import load_interactions, load_lightgcn_format
from graphrec.data.movielens import DATASETS, load_movielens
from graphrec.data.preprocess import drop_duplicates, k_core, to_implicit
from graphrec.data.split import (
    Split,
    SplitStats,
    cold_item_split,
    fixed_split,
    leave_one_out,
    make_split,
    random_split,
    temporal_split,
)
from graphrec.data.stats import dataset_info
from graphrec.data.vocab import Vocabulary

__all__ = [
    "DATASETS", "Dataset", "Interactions", "Split", "SplitStats", "Vocabulary", "cold_item_split", "dataset_info",
    "drop_duplicates", "fixed_split", "k_core", "leave_one_out", "load_interactions",
    "load_lightgcn_format", "load_movielens", "make_split", "random_split", "temporal_split", "to_implicit",
]
