"""Evaluation metrics: the product's operating point and the plain 0.5 decision point.

The operating point counts a comment as flagged when its verdict is ``spam`` or
``discard`` (what a site actually blocks); the plain point flags a score of at
least 0.5, the point published results use.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from model.verdict import DISCARD, SPAM, UNSURE, Thresholds


def binary_metrics(labels: Sequence[int], flagged: Sequence[bool]) -> dict[str, float]:
    """Accuracy, precision, recall, F1, MCC and false-positive rate of a yes/no decision."""
    y = np.asarray(labels, dtype=int)
    f = np.asarray(flagged, dtype=int)
    ham = y == 0
    return {
        "accuracy": float(accuracy_score(y, f)),
        "precision": float(precision_score(y, f, zero_division=0)),
        "recall": float(recall_score(y, f, zero_division=0)),
        "f1": float(f1_score(y, f, zero_division=0)),
        "mcc": float(matthews_corrcoef(y, f)) if len(set(y)) > 1 or len(set(f)) > 1 else 0.0,
        "false_positive_rate": float(f[ham].mean()) if ham.any() else 0.0,
    }


def evaluate_scores(labels: Sequence[int], scores: Sequence[float],
                    thresholds: Thresholds) -> dict[str, Any]:
    """Every figure `commentguard evaluate` reports, from labels and spam probabilities."""
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    tiers = [thresholds.tier(float(v)) for v in s]
    flagged = np.array([t in (SPAM, DISCARD) for t in tiers])
    result: dict[str, Any] = {"n": int(len(y)), "spam": int(y.sum()), "ham": int((y == 0).sum())}
    result.update(binary_metrics(y, flagged))
    result["unsure_rate"] = float(np.mean([t == UNSURE for t in tiers])) if len(y) else 0.0
    result["discard_rate"] = float(np.mean([t == DISCARD for t in tiers])) if len(y) else 0.0
    both = len(set(y.tolist())) == 2
    result["roc_auc"] = float(roc_auc_score(y, s)) if both else None
    result["brier"] = float(brier_score_loss(y, s)) if len(y) else None
    result["thresholds"] = thresholds.to_dict()
    result["at_0_5"] = binary_metrics(y, s >= 0.5)
    return result
