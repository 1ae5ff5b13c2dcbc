"""Verdict tiers, thresholds, and the verdict a scorer returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HAM = "ham"
UNSURE = "unsure"
SPAM = "spam"
DISCARD = "discard"
TIERS: tuple[str, ...] = (HAM, UNSURE, SPAM, DISCARD)


@dataclass(frozen=True)
class Thresholds:
    """Score cut-offs between tiers: ``unsure <= spam <= discard``, all in [0, 1]."""

    unsure: float
    spam: float
    discard: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.unsure <= self.spam <= self.discard <= 1.0):
            raise ValueError(
                f"thresholds must satisfy 0 <= unsure <= spam <= discard <= 1, got {self}"
            )

    def tier(self, score: float) -> str:
        """The tier a score falls in."""
        if score >= self.discard:
            return DISCARD
        if score >= self.spam:
            return SPAM
        if score >= self.unsure:
            return UNSURE
        return HAM

    def to_dict(self) -> dict[str, float]:
        return {"unsure": self.unsure, "spam": self.spam, "discard": self.discard}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Thresholds":
        return cls(float(data["unsure"]), float(data["spam"]), float(data["discard"]))


@dataclass(frozen=True)
class Reason:
    """One thing that moved the score, in words a moderator understands.

    ``weight`` is its signed contribution to the log-odds (positive: towards spam).
    """

    text: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.text, "weight": round(self.weight, 4)}


@dataclass(frozen=True)
class Verdict:
    """The outcome of scoring one comment."""

    tier: str
    score: float
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    model_version: str = ""

    @property
    def is_spam(self) -> bool:
        """Flagged: the tier is ``spam`` or ``discard``."""
        return self.tier in (SPAM, DISCARD)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.tier,
            "score": round(self.score, 6),
            "reasons": [r.to_dict() for r in self.reasons],
            "model_version": self.model_version,
        }
