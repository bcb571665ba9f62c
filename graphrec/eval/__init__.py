"""Honest evaluation: full ranking over all items, metrics with closed forms."""

from graphrec.eval.beyond import beyond_accuracy, coverage, intra_list_diversity, mean_popularity, novelty
from graphrec.eval.evaluator import Evaluator, RankingResult, accuracy, to_csr
from graphrec.eval.metrics import METRICS, average_precision, hit_rate, mrr, ndcg, precision, recall
from graphrec.eval.topk import topk

__all__ = [
    "METRICS", "Evaluator", "RankingResult", "accuracy", "average_precision", "beyond_accuracy", "coverage",
    "hit_rate", "intra_list_diversity", "mean_popularity", "mrr", "ndcg", "novelty", "precision", "recall", "to_csr", "topk",
]
