"""Choosing the tier thresholds from out-of-fold scores on the training data.

Blocking a real reader costs more than letting one spam through, so thresholds
are set by the share of ham each tier may catch: by default ``spam`` flags at
most 1% of ham and ``discard`` at most 0.1%; ``unsure`` (held for moderation)
starts where 5% of ham would be held. Floors keep the tiers meaningful when
the training data is separable (a perfect fold would otherwise put the spam
threshold near zero).
"""
from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np

from model.verdict import Thresholds


@dataclass(frozen=True)
class ThresholdPolicy:
    """The largest share of ham each tier may catch, and floors for the cut-offs."""

    spam_max_fpr: float = 0.01
    discard_max_fpr: float = 0.001
    unsure_max_fpr: float = 0.05
    spam_floor: float = 0.5
    discard_floor: float = 0.9
    unsure_floor: float = 0.2


def cutoff_for_fpr(ham_scores: np.ndarray, max_fpr: float) -> float:
    """The lowest threshold at which at most ``max_fpr`` of these ham scores are at or above it."""
    if len(ham_scores) == 0:
        return 0.5
    ordered = np.sort(ham_scores)[::-1]
    allowed = int(np.floor(max_fpr * len(ordered)))
    if allowed >= len(ordered):
        return 0.0
    # Just above the first ham score that may not be flagged.
    return float(min(1.0, np.nextafter(ordered[allowed], np.inf)))


def choose_thresholds(labels: np.ndarray, scores: np.ndarray,
                      policy: ThresholdPolicy = ThresholdPolicy()) -> Thresholds:
    """Thresholds meeting the policy on out-of-fold ``scores`` of the training ``labels``."""
    ham = np.asarray(scores)[np.asarray(labels) == 0]
    spam = max(policy.spam_floor, cutoff_for_fpr(ham, policy.spam_max_fpr))
    discard = max(policy.discard_floor, spam, cutoff_for_fpr(ham, policy.discard_max_fpr))
    unsure = min(spam, max(policy.unsure_floor, cutoff_for_fpr(ham, policy.unsure_max_fpr)))
    return Thresholds(unsure=_up(unsure), spam=_up(spam), discard=_up(min(discard, 1.0)))


def _up(value: float) -> float:
    """Round up to 6 decimals, so rounding never lets an extra ham through."""
    return min(1.0, math.ceil(value * 1e6) / 1e6)
