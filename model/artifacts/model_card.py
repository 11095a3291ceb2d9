"""The model card (the artifact's README.md), generated from its metadata so the two never disagree."""

from __future__ import annotations

from pathlib import Path

from realcheck.model.artifacts.metadata import condition_rules, with_defaults


def model_card(metadata: dict, folder: Path | None = None) -> str:
    """The model card (README.md of the artifact): its sections in order, each from the metadata."""
    metadata = with_defaults(metadata)
    lines = [
        f"# {metadata['name']} {metadata['version']}",
        "",
        "RealCheck detector: scores an image with P(AI), the probability that it is AI-generated, and gives a "
        "verdict `ai`, `real` or `uncertain`.",
        "",
        *([f"**Intended use.** {metadata['intended_use']}", ""] if metadata.get("intended_use") else []),
        *_model_section(metadata),
        *_training_data_section(metadata.get("training_data", {})),
        *_test_split_section(metadata),
        *_speed_lines(metadata),
        *_cross_collection_section(metadata.get("cross_collection")),
        *_shortcut_audit_section(metadata.get("shortcut_audit")),
        *_source_holdout_section(metadata.get("source_holdout")),
        *_plots_section(folder),
        *_limitations_section(metadata),
    ]
    if metadata.get("reproduce"):
        lines += ["## Reproduce this model", "", "```bash", metadata["reproduce"], "```", ""]
    return "\n".join(lines)


def _model_section(metadata: dict) -> list[str]:
    low, high = metadata["uncertainty_band"]
    compute = metadata.get("gflop_per_image")
    return [
        "## Model",
        f"- Backbone: {metadata['backbone']} ({metadata.get('weights', 'unknown')} initial weights), head "
        f"{metadata.get('head', {})}",
        f"- Input: raw RGB 0..255, any size; {metadata['input_mode']} to "
        f"{metadata['input_size']}x{metadata['input_size']} inside the inference path"
        + _training_input_note(metadata),
        f"- Decision: `ai` when P(AI) >= {metadata['threshold']:.4f}; `uncertain` inside "
        f"[{low:.4f}, {high:.4f}] (both chosen on the "
        f"{metadata.get('calibration', {}).get('fitted_on', 'val')} split)",
        *_condition_rule_lines(metadata),
        *_operating_point_lines(metadata.get("operating_point")),
        *_probe_lines(metadata),
        *_calibration_lines(metadata.get("calibration")),
        *([f"- Compute: {compute} GFLOP per image"] if compute else []),
        f"- Seed {metadata.get('seed')}, git commit {metadata.get('git_commit')}, created {metadata.get('created_at')}",
        f"- Command: `{metadata.get('command', '')}`",
        "",
    ]


def _condition_rule_lines(metadata: dict) -> list[str]:
    """One line per image condition the model holds a decision rule of its own for."""
    lines = []
    for condition, rule in condition_rules(metadata).items():
        low, high = rule["uncertainty_band"]
        lines.append(
            f"- Decision for {rule.get('applies_to', condition)}: `ai` when P(AI) >= {rule['threshold']:.4f}; "
            f"`uncertain` inside [{low:.4f}, {high:.4f}] (chosen the same way on "
            f"{rule.get('fitted_on', 'copies meeting it')})"
        )
    return lines


def _training_data_section(data: dict) -> list[str]:
    lines = [
        "## Training data",
        f"- Layout: {data.get('layout', 'unknown')}, folder `{data.get('root_name', '?')}`; "
        f"{data.get('n', '?')} usable images ({data.get('real', '?')} real, {data.get('ai', '?')} ai), "
        f"{data.get('skipped', 0)} skipped",
    ]
    for split_name, counts in data.get("splits", {}).items():
        lines.append(
            f"- {split_name}: {counts.get('n')} images ({counts.get('real')} real, {counts.get('ai')} ai)"
        )
    for source, counts in data.get("by_generator", {}).items():
        lines.append(f"- source `{source}`: {counts['real']} real, {counts['ai']} ai")
    return lines


TEST_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "average_precision",
    "ece",
)


def _test_split_section(metadata: dict) -> list[str]:
    metrics = metadata.get("metrics", {}).get("test") or {}
    lines = ["", "## Metrics on the held-out test split"]
    if not metrics:
        if metadata.get("source_holdout"):
            return [
                *lines,
                "No test split: every image served for training or validation; the source-held-out results "
                "below are its test.",
            ]
        return [*lines, "Not evaluated."]

    def number(key):
        value = metrics.get(key)
        return "n/a" if value is None else f"{value:.4f}"

    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    lines += [
        "| metric | value |",
        "|---|---|",
        *(f"| {key.replace('_', ' ')} | {number(key)} |" for key in TEST_METRICS),
        f"| images | {metrics['n']} |",
        "",
        f"Confusion matrix (rows true real/ai, columns predicted real/ai): [[{tn}, {fp}], [{fn}, {tp}]]",
    ]
    for source, entry in metrics.get("per_generator", {}).items():
        lines.append(f"- `{source}`: n={entry['n']}, accuracy {entry['accuracy']:.4f}")
    return lines


def _plots_section(folder: Path | None) -> list[str]:
    if folder is None or not (folder / "plots").is_dir():
        return []
    plots = sorted((folder / "plots").glob("*.png"))
    return ["", "## Plots", *(f"![{plot.stem}](plots/{plot.name})" for plot in plots)]


def _limitations_section(metadata: dict) -> list[str]:
    return [
        "",
        "## Provenance beside the score",
        "- The score above is this model's guess from pixels alone. Every RealCheck face also reads what the "
        "file declares (`model/scoring/provenance.py`): an intact C2PA manifest or an explicit metadata declaration "
        "(IPTC DigitalSourceType, generator settings) that the image is AI-generated makes the verdict `ai` "
        "with basis `provenance`, this model's score reported beside it. Nothing else overrides the model: a "
        "signed camera capture is shown, never decisive, and missing metadata is no evidence of anything.",
        "",
        "## Limitations",
        "- Scores are only as general as the training data: generators, image sources and post-processing not "
        "seen in training can be misjudged. Check the per-source numbers above before relying on a verdict.",
        "- A score is evidence, not proof; `uncertain` means the model cannot tell at its validated accuracy.",
        *(f"- {text}" for text in metadata.get("known_limitations", [])),
        "",
    ]


def _training_input_note(metadata: dict) -> str:
    notes = []
    crop = metadata.get("training_crop_size")
    if crop and crop != metadata["input_size"]:
        notes.append(f"trained on random {crop}x{crop} crops at native resolution (fully convolutional)")
    if metadata["input_mode"] == "crop" and metadata["input_fill"] == "mirror":
        notes.append("an image smaller than the window is mirrored at its edges, never resampled")
    if metadata["input_filter"] != "none":
        notes.append(f"{metadata['input_filter']} input filter inside the model")
    return "; " + "; ".join(notes) if notes else ""


TIER_TITLES = {
    "clean": "clean (as stored)",
    "web_768_q60": "longest side <= 768 px, JPEG q60",
    "web_512_q40": "longest side <= 512 px, JPEG q40",
    "web_256_q75": "thumbnail: longest side <= 256 px, JPEG q75",
}


def _operating_point_lines(operating_point: dict | None) -> list[str]:
    if not operating_point or not operating_point.get("description"):
        return []
    line = f"- Operating point ({operating_point.get('rule', '?')}): {operating_point['description']}"
    clean = operating_point.get("measured", {}).get("clean")
    if clean:
        line += (
            f" Measured at it, clean copies, {operating_point['measured'].get('protocol', 'held out')}: "
            f"{clean['ai_caught']:.1%} of AI images caught, {clean['real_called_ai']:.1%} of real photos "
            f"called AI ({clean['worst_real_source_called_ai']:.1%} on the worst real source), "
            f"{clean['uncertain']:.1%} uncertain."
        )
    return [line]


def _probe_lines(metadata: dict) -> list[str]:
    if metadata.get("pooling") != "stages":
        return []
    probe = metadata.get("probe", {})
    return [
        "- Features: every stage of the frozen backbone pooled (per channel mean, standard deviation and "
        f"maximum over the window, {probe.get('features')} numbers); the head is a logistic regression, "
        f"L2 strength C = {probe.get('c')} chosen by ROC AUC on the validation sources"
    ]


def _calibration_lines(calibration: dict | None) -> list[str]:
    if not calibration:
        return []
    return [
        f"- Calibration: {calibration['method']} scaling on the {calibration['fitted_on']} split, "
        f"P = sigmoid({calibration['scale']:.4f} * logit(p) + {calibration['bias']:.4f}) inside the graph; "
        f"validation ECE {calibration['val_ece_before']:.4f} before, {calibration['val_ece_after']:.4f} after"
    ]


def _source_holdout_section(protocol: dict | None) -> list[str]:
    """The source-held-out protocol: pooled numbers per copy, then what each unseen source's images were called."""
    if not protocol:
        return []
    tiers = [tier for tier in TIER_TITLES if tier in protocol]
    baseline = protocol.get("baseline") or {}
    lines = [
        "",
        "## Source-held-out results",
        "",
        f"Every source (a generator, a camera collection) was held out of training in one of "
        f"{len(protocol.get('folds', {}))} folds and scored by the model trained without it, with that "
        "model's own threshold, calibration and band (fitted on other held-out sources). `ai` and `uncertain` "
        "are verdict rates; for an AI source `ai` is the share caught, for a real source the share of real "
        "photographs accused.",
        "",
        "| model | copy | images | ROC AUC | balanced accuracy | ECE | AI caught | real called AI | uncertain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [("this model", protocol)]
    if baseline:
        rows += [("this model, the previous default's images", baseline.get("this_model", {}))]
        rows += [(baseline.get("name", "previous default"), baseline)]
    for name, results in rows:
        for tier in tiers:
            entry = results.get(tier)
            if entry and "roc_auc" in entry:
                lines.append(
                    f"| {name} | {TIER_TITLES[tier]} | {entry['n']} | {entry['roc_auc']:.3f} | "
                    f"{entry['balanced_accuracy']:.3f} | {entry['ece']:.3f} | {entry['ai_caught']:.1%} | "
                    f"{entry['real_called_ai']:.1%} | {entry['uncertain']:.1%} |"
                )
    header = " | ".join(f"{tier}: ai / uncertain" for tier in tiers)
    previous = (baseline.get("clean") or {}).get("sources", {})
    header += " | previous default, clean: ai / uncertain" if previous else ""
    columns = len(tiers) + (1 if previous else 0)
    lines += ["", f"| source | class | images | {header} |", "|---|---|---|" + "---|" * columns]
    for source, entry in protocol[tiers[0]]["sources"].items():
        rates = [protocol[t]["sources"][source] for t in tiers]
        if previous:
            rates.append(previous.get(source))
        cells = " | ".join(
            f"{rate['verdict_ai']:.0%} / {rate['verdict_uncertain']:.0%}" if rate else "-" for rate in rates
        )
        lines.append(f"| {source} | {entry['label']} | {entry['n']} | {cells} |")
    if baseline:
        lines += [
            "",
            f"The previous default ({baseline.get('name')}) was scored on the same images; it was trained on part "
            "of the dhanush-dev sources, so its numbers there are not held out.",
        ]
    return lines


def _cross_collection_section(protocol: dict | None) -> list[str]:
    """Train on one collection, test on another built independently: the number RealCheck steers by."""
    if not protocol:
        return []
    lines = [
        "",
        "## Cross-collection results",
        "",
        protocol.get("description", ""),
        "",
        "| recipe | trained -> tested | copy | images | ROC AUC | balanced accuracy | ECE | AI caught | "
        "real called AI | worst real source called AI | uncertain |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for recipe, directions in protocol.get("recipes", {}).items():
        for direction, entry in directions.items():
            for tier, title in TIER_TITLES.items():
                measured = entry.get(tier)
                if not measured or "roc_auc" not in measured:
                    continue
                lines.append(
                    f"| {recipe} | {direction} | {title} | {measured['n']} | {measured['roc_auc']:.3f} | "
                    f"{measured['balanced_accuracy']:.3f} | {measured['ece']:.3f} | {measured['ai_caught']:.1%} | "
                    f"{measured['real_called_ai']:.1%} | {_percent(measured['worst_real_source_called_ai'])} | "
                    f"{measured['uncertain']:.1%} |"
                )
    previous = protocol.get("previous_default")
    for tier, title in TIER_TITLES.items() if previous else ():
        measured = previous.get(tier)
        if measured:
            lines.append(
                f"| previous default ({previous.get('name')}) | its own training data -> B | {title} | "
                f"{measured['n']} | {measured['roc_auc']:.3f} | {measured['balanced_accuracy']:.3f} | "
                f"{measured['ece']:.3f} | {measured['ai_caught']:.1%} | {measured['real_called_ai']:.1%} | - | "
                f"{measured['uncertain']:.1%} |"
            )
    bundled = protocol.get("recipes", {}).get(protocol.get("bundled_recipe"), {})
    if bundled:
        lines += [
            "",
            f"Per source, the bundled recipe ({protocol['bundled_recipe']}), clean copies: the share called `ai` "
            "(for an AI source the share caught, for a real source the share accused; a source of both classes "
            "shows both, AI first) and the share `uncertain`.",
            "",
            "| trained -> tested | source | class | images | ai | uncertain |",
            "|---|---|---|---|---|---|",
        ]
        for direction, entry in bundled.items():
            for source, rates in (entry.get("clean") or {}).get("sources", {}).items():
                shares = [f"{rates[key]:.0%}" for key in ("ai_caught", "real_called_ai") if key in rates]
                lines.append(
                    f"| {direction} | {source} | {rates['label']} | {rates['n']} | {' / '.join(shares)} | "
                    f"{rates['uncertain']:.0%} |"
                )
    return lines


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _shortcut_audit_section(audit: dict | None) -> list[str]:
    if not audit:
        return []
    return [
        "",
        "## Shortcut audit",
        "",
        audit.get("summary", ""),
        "",
        f"Command: `{audit.get('command', '')}`",
    ]


def _speed_lines(metadata: dict) -> list[str]:
    speed = metadata.get("inference_speed")
    return ["", f"Inference speed: {speed}"] if speed else []
