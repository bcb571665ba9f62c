"""Honest evaluation: full ranking over all items, metrics with closed forms."""

from graphrec.eval.beyond import beyond_accuracy, coverage, intra_list_diversity, mean_popularity, novelty
from graphrec.eval.evaluator import Evaluator, RankingResult, accuracy
from graphrec.eval.metrics import METRICS, average_precision, hit_rate, mrr, ndcg, precision, recall
from graphrec.eval.topk import mask_seen, topk, unseen_scores
from graphrec.matrices import to_csr  # its home is graphrec.matrices; kept here for existing imports

__all__ = [
    "METRICS", "Evaluator", "RankingResult", "accuracy", "average_precision", "beyond_accuracy", "coverage",
    "hit_rate", "intra_list_diversity", "mask_seen", "mean_popularity", "mrr", "ndcg", "novelty", "precision", "recall",
    "to_csr", "topk", "unseen_scores",
]
