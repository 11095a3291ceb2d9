"""The decision rule: from P(AI) to a verdict. Free of TensorFlow and scikit-learn, so serving stays light."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from realcheck.model.labels import AI, LABEL_NAMES, REAL, UNCERTAIN


def verdict_for_score(score: float, threshold: float, band: tuple[float, float]) -> str:
    """Verdict for P(AI): "uncertain" inside the band [low, high], else "ai" at or above the threshold."""
    low, high = band
    if low <= score <= high and low < high:
        return UNCERTAIN
    return LABEL_NAMES[AI] if score >= threshold else LABEL_NAMES[REAL]


@dataclass(frozen=True)
class DecisionRule:
    """Threshold on P(AI) and the band around it in which the verdict is "uncertain"."""

    threshold: float = 0.5
    band: tuple[float, float] = (0.5, 0.5)

    @classmethod
    def from_metadata(cls, metadata: Mapping) -> DecisionRule:
        """The rule an artifact's metadata.json fixes."""
        low, high = (float(edge) for edge in metadata["uncertainty_band"])
        return cls(float(metadata["threshold"]), (low, high))

    def verdict(self, score: float) -> str:
        return verdict_for_score(score, self.threshold, self.band)

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "uncertainty_band": list(self.band)}
