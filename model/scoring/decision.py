"""From P(AI) and the file's provenance to the verdict. Free of TensorFlow and scikit-learn, so serving stays
light."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from realcheck.model.artifacts.metadata import condition_rules
from realcheck.model.labels import AI, LABEL_NAMES, REAL, UNCERTAIN

if TYPE_CHECKING:
    from realcheck.model.scoring.provenance import Provenance


def verdict_for_score(score: float, threshold: float, band: tuple[float, float]) -> str:
    """Verdict for P(AI): "uncertain" inside the band [low, high], else "ai" at or above the threshold."""
    low, high = band
    if low <= score <= high and low < high:
        return UNCERTAIN
    return LABEL_NAMES[AI] if score >= threshold else LABEL_NAMES[REAL]


# The name of the rule that decides an image meeting none of the conditions its model holds a rule for.
MAIN_RULE = "main"
# Each image condition in the words every face uses for an image that meets it.
CONDITION_WORDS = {"small_image": "small image", "compressed_image": "heavily compressed JPEG"}


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

    def ranges(self) -> tuple[float, float]:
        """(low, high): `real` below low, `uncertain` from low to high, `ai` above high, as `verdict` decides."""
        low, high = self.band
        return (low, high) if low < high else (self.threshold, self.threshold)

    def range_fields(self) -> dict:
        """The ranges as the fields every machine-readable answer carries beside a score."""
        low, high = self.ranges()
        return {"real_below": low, "ai_above": high}

    def describe(self) -> str:
        """The three ranges in the words every face uses next to a score."""
        low, high = self.ranges()
        if low == high:
            return f"AI from {high:.3f}, no AI signs below"
        return f"AI above {high:.3f}, unsure {low:.3f}-{high:.3f}, no AI signs below {low:.3f}"


@dataclass(frozen=True)
class RuleSet:
    """An artifact's decision rules: `main`, and one per image condition it holds a rule for (`by_condition`,
    from `<condition>_rule` in its metadata), each with the words saying which images it applies to."""

    main: DecisionRule
    by_condition: Mapping[str, DecisionRule] = field(default_factory=dict)
    applies_to: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_metadata(cls, metadata: Mapping) -> RuleSet:
        held = condition_rules(metadata)
        return cls(
            DecisionRule.from_metadata(metadata),
            {c: DecisionRule.from_metadata(entry) for c, entry in held.items()},
            {c: str(entry.get("applies_to", c.replace("_", " ") + "s")) for c, entry in held.items()},
        )

    @classmethod
    def of(cls, rules: DecisionRule | RuleSet) -> RuleSet:
        """`rules` as a RuleSet: a single DecisionRule decides every image."""
        return rules if isinstance(rules, RuleSet) else cls(rules)

    def name_for(self, condition: str | None) -> str:
        """The name of the rule that decides an image meeting `condition`: the condition's, or MAIN_RULE."""
        return condition if condition in self.by_condition else MAIN_RULE

    def rule_for(self, condition: str | None) -> DecisionRule:
        """The rule that decides an image meeting `condition` (None: no condition)."""
        return self.by_condition.get(condition, self.main)

    def rules_for(self, conditions) -> list[DecisionRule]:
        """Each image's rule, by its condition."""
        return [self.rule_for(condition) for condition in conditions]

    def describe(self) -> str:
        """The ranges of every rule in words: the main rule, then each condition's."""
        return "; ".join(
            [self.main.describe()]
            + [f"{self.applies_to[c]}: {rule.describe()}" for c, rule in self.by_condition.items()]
        )


def describe_rules(metadata: Mapping) -> str:
    """The ranges of an artifact's rules in words (`RuleSet.describe`)."""
    return RuleSet.from_metadata(metadata).describe()


@dataclass(frozen=True)
class Decision:
    """The verdict given, and what it rests on: `provenance` or `model`."""

    verdict: str
    basis: str


def decide(model_verdict: str, provenance: Provenance) -> Decision:
    """The verdict for an image: provenance decides only when it declares AI; otherwise the model does."""
    if provenance.declares_ai:
        return Decision(LABEL_NAMES[AI], "provenance")
    return Decision(model_verdict, "model")


# One scored image as every face gives it, under these names: the API's prediction, a `check`/`scan` row and
# the upload page's table and CSV (each adds what is its own: provenance, timing, the file).
# `Prediction.record` fills them. `image_rule` names the rule whose ranges these are: MAIN_RULE, or the image
# condition (`small_image`, `compressed_image`) the model holds a rule of its own for.
RECORD_FIELDS = (
    "verdict",
    "basis",
    "score",
    "model_verdict",
    "real_below",
    "ai_above",
    "image_rule",
    "sha256",
)

NOT_PROOF = "treat a verdict as a hint, not proof"


def measured_accuracy(metadata: Mapping) -> str:
    """One plain sentence of how good the model is, from the rates its metadata records at its operating point.

    Every face shows this sentence rather than a number of its own; a model whose metadata holds no such
    measurement says so.
    """
    measured = (metadata.get("operating_point") or {}).get("measured") or {}
    clean = measured.get("clean") or {}
    if not {"ai_caught", "real_called_ai", "uncertain"} <= set(clean):
        return f"This model's accuracy on images from sources it never saw was not measured; {NOT_PROOF}."
    where = (
        "image collections it never saw"
        if "cross-collection" in str(measured.get("protocol", ""))
        else "images from sources it never saw"
    )
    return (
        f"In tests on {where}, it called {clean['ai_caught']:.0%} of AI images AI and "
        f"{clean['real_called_ai']:.1%} of real photos AI, and was unsure about {clean['uncertain']:.0%}; "
        f"{NOT_PROOF}."
    )
