"""Tests of training.thresholds (tier cut-offs from out-of-fold scores) and training.metrics."""
from __future__ import annotations

import numpy as np
import pytest

from model.verdict import Thresholds
from training.metrics import binary_metrics, evaluate_scores
from training.thresholds import ThresholdPolicy, choose_thresholds, cutoff_for_fpr


def test_cutoff_flags_at_most_the_allowed_share_of_ham() -> None:
    rng = np.random.default_rng(1)
    ham = rng.beta(2, 5, size=1000)
    for fpr in (0.0, 0.001, 0.01, 0.05, 0.2):
        cut = cutoff_for_fpr(ham, fpr)
        assert np.mean(ham >= cut) <= fpr
        # and it is the lowest such cut-off: a bit lower would flag too many
        if fpr < 1:
            ordered = np.sort(ham)[::-1]
            assert np.mean(ham >= ordered[int(np.floor(fpr * len(ham)))]) > fpr


def test_cutoff_on_a_small_hand_made_set() -> None:
    ham = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
    assert cutoff_for_fpr(ham, 0.0) > 0.9
    assert cutoff_for_fpr(ham, 0.2) > 0.4 and cutoff_for_fpr(ham, 0.2) <= 0.9
    assert cutoff_for_fpr(np.array([]), 0.01) == 0.5


def test_cutoff_handles_ham_at_one() -> None:
    cut = cutoff_for_fpr(np.array([1.0, 0.2, 0.1]), 0.0)
    assert cut == 1.0  # nothing can be flagged above 1; never more than 1


def _synthetic(seed: int = 0, n_ham: int = 2000, n_spam: int = 800):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.beta(2, 8, n_ham), rng.beta(8, 2, n_spam)])
    labels = np.array([0] * n_ham + [1] * n_spam)
    return labels, scores


def test_chosen_spam_threshold_flags_at_most_one_percent_of_ham() -> None:
    labels, scores = _synthetic()
    t = choose_thresholds(labels, scores)
    ham = scores[labels == 0]
    assert np.mean(ham >= t.spam) <= 0.01
    assert np.mean(ham >= t.discard) <= 0.001
    assert np.mean(ham >= t.unsure) <= 0.05 or t.unsure == 0.2
    assert t.unsure <= t.spam <= t.discard <= 1.0


def test_floors_apply_when_the_data_is_separable() -> None:
    labels = np.array([0] * 500 + [1] * 500)
    scores = np.concatenate([np.linspace(0.0, 0.05, 500), np.linspace(0.95, 1.0, 500)])
    policy = ThresholdPolicy()
    t = choose_thresholds(labels, scores, policy)
    assert t.spam == pytest.approx(policy.spam_floor)
    assert t.discard == pytest.approx(policy.discard_floor)
    assert t.unsure == pytest.approx(policy.unsure_floor)


def test_ordering_holds_when_ham_scores_are_high() -> None:
    # Ham scores so high that the unsure cut-off alone would exceed the spam floor.
    rng = np.random.default_rng(3)
    labels = np.array([0] * 1000 + [1] * 100)
    scores = np.concatenate([rng.uniform(0.5, 0.99, 1000), rng.uniform(0.9, 1.0, 100)])
    t = choose_thresholds(labels, scores)
    assert t.unsure <= t.spam <= t.discard <= 1.0
    assert np.mean(scores[:1000] >= t.spam) <= 0.01


def test_custom_policy_is_obeyed() -> None:
    labels, scores = _synthetic(seed=7)
    policy = ThresholdPolicy(spam_max_fpr=0.05, spam_floor=0.0, unsure_floor=0.0, discard_floor=0.0)
    t = choose_thresholds(labels, scores, policy)
    assert np.mean(scores[labels == 0] >= t.spam) <= 0.05
    assert isinstance(t, Thresholds)


# --- metrics ----------------------------------------------------------------------------

KEYS = {"n", "spam", "accuracy", "precision", "recall", "f1", "mcc", "false_positive_rate",
        "unsure_rate", "roc_auc", "at_0_5"}
AT_KEYS = {"accuracy", "precision", "recall", "f1", "mcc", "false_positive_rate"}


def test_evaluate_scores_on_a_hand_computed_example() -> None:
    # thresholds: unsure 0.3, spam 0.6, discard 0.9
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    scores = [0.95, 0.7, 0.55, 0.2, 0.65, 0.4, 0.1, 0.05, 0.0, 0.35]
    result = evaluate_scores(labels, scores, Thresholds(0.3, 0.6, 0.9))
    assert KEYS <= set(result)
    assert AT_KEYS <= set(result["at_0_5"])
    assert result["n"] == 10 and result["spam"] == 4
    # operating point: flagged = score >= 0.6 -> spam {0.95, 0.7} and ham {0.65}
    tp, fp, fn, tn = 2, 1, 2, 5
    assert result["accuracy"] == pytest.approx((tp + tn) / 10)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(0.5)
    assert result["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    mcc = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert result["mcc"] == pytest.approx(mcc)
    assert result["false_positive_rate"] == pytest.approx(1 / 6)
    # unsure = [0.3, 0.6): 0.55, 0.4, 0.35
    assert result["unsure_rate"] == pytest.approx(0.3)
    # ROC AUC: pairs (spam, ham) where spam scores higher; 4 * 6 = 24 pairs
    spam_s, ham_s = scores[:4], scores[4:]
    wins = sum((s > h) + 0.5 * (s == h) for s in spam_s for h in ham_s)
    assert result["roc_auc"] == pytest.approx(wins / 24)
    # at 0.5: flagged {0.95, 0.7, 0.55} spam and {0.65} ham
    at = result["at_0_5"]
    assert at["recall"] == pytest.approx(0.75)
    assert at["precision"] == pytest.approx(0.75)
    assert at["false_positive_rate"] == pytest.approx(1 / 6)
    assert at["accuracy"] == pytest.approx(8 / 10)


def test_evaluate_scores_with_one_class_has_no_auc() -> None:
    result = evaluate_scores([0, 0, 0], [0.1, 0.2, 0.7], Thresholds(0.3, 0.6, 0.9))
    assert result["roc_auc"] is None
    assert result["false_positive_rate"] == pytest.approx(1 / 3)
    assert result["mcc"] == 0.0


def test_binary_metrics_perfect_decision() -> None:
    m = binary_metrics([1, 0, 1, 0], [True, False, True, False])
    assert m == {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "mcc": 1.0,
                 "false_positive_rate": 0.0}
