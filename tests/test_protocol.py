"""The per-source operating point and the cross-collection report."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from realcheck.model.artifacts.model_card import model_card
from realcheck.model.evaluation import protocol
from realcheck.model.labels import AI, REAL


def synthetic(seed: int = 0):
    """Two real sources (one with a tail of high scores) and one AI source."""
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.uniform(0, 0.5, 200), rng.uniform(0, 0.95, 60), rng.uniform(0.3, 1, 150)])
    labels = np.array([REAL] * 260 + [AI] * 150)
    sources = np.array(["calm"] * 200 + ["noisy"] * 60 + ["generator"] * 150)
    return labels, scores, sources


def test_the_threshold_holds_for_the_worst_real_source_not_the_pooled_rate():
    labels, scores, sources = synthetic()
    rule = protocol.choose_operating_point(labels, scores, sources, max_real_called_ai=0.03)
    for source in ("calm", "noisy"):
        mine = scores[sources == source]
        assert np.mean(mine > rule.threshold) <= 0.03
    # As low as that allows: a little lower and the noisy source is accused more often.
    noisy = scores[sources == "noisy"]
    assert np.mean(noisy > np.nextafter(rule.threshold, 0) - 1e-3) > 0.03
    low, high = rule.band
    assert high == rule.threshold and low <= high
    assert np.mean(scores[labels == AI] < low) <= protocol.MAX_AI_CALLED_REAL
    verdicts = protocol.verdicts(scores, rule)
    assert set(verdicts) <= {"ai", "real", "uncertain"}
    assert not np.any((verdicts == "ai") & (scores <= rule.threshold))


def test_measure_reports_rates_per_source_and_the_worst_ones():
    labels, scores, sources = synthetic()
    rule = protocol.choose_operating_point(labels, scores, sources)
    measured = protocol.measure(labels, scores, sources, rule, balanced_threshold=0.5)
    assert measured["n"] == 410 and measured["n_ai"] == 150
    assert 0.5 < measured["roc_auc"] <= 1 and 0 <= measured["ece"] <= 1
    assert measured["sources"]["generator"]["label"] == "ai"
    assert measured["worst_real_source_called_ai"] <= 0.03
    assert measured["worst_ai_source_caught"] == measured["sources"]["generator"]["ai_caught"]
    mixed = protocol.measure(labels, scores, np.array(["one"] * 410), rule, 0.5)
    assert mixed["sources"]["one"]["label"] == "both"


def write_scores(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=protocol_columns())
        writer.writeheader()
        writer.writerows(rows)


def protocol_columns():
    return [
        "recipe", "direction", "split", "tier", "collection", "path", "label", "source", "score", "small",
        "jpeg_quality",
    ]  # fmt: skip


def scored_rows(
    recipe: str, direction: str, split: str, tier: str, scores, small: bool = False, jpeg_quality: int = 90
) -> list[dict]:
    """scores.csv rows of the synthetic images (`synthetic`) with these scores."""
    labels, _, sources = synthetic()
    return [
        {
            "recipe": recipe,
            "direction": direction,
            "split": split,
            "tier": tier,
            "collection": "c",
            "path": f"{split}/{i}.jpg",
            "label": int(label),
            "source": source,
            "score": f"{score:.6f}",
            "small": int(small),
            "jpeg_quality": jpeg_quality,
        }  # fmt: skip
        for i, (label, score, source) in enumerate(zip(labels, scores, sources))
    ]


def test_report_fits_on_validation_and_measures_every_held_out_copy(tmp_path):
    scores = synthetic()[1]
    rows = []
    for direction in ("A->B", "B->A"):
        for split, tiers in (("val", ["clean"]), ("test", ["clean", "web_512_q40"])):
            for tier in tiers:
                shift = 0.05 if tier != "clean" else 0.0
                rows += scored_rows("adapt:x", direction, split, tier, np.minimum(1.0, scores + shift))
    write_scores(tmp_path / "scores.csv", rows)
    report = protocol.write_report(tmp_path)
    entry = report["adapt:x"]["A->B"]
    assert set(entry) >= {"clean", "web_512_q40", "threshold", "uncertainty_band", "calibration"}
    assert entry["clean"]["worst_real_source_called_ai"] <= 0.03  # same data: the rule holds
    pooled = protocol.pooled_rates(report["adapt:x"])
    assert pooled["clean"]["n"] == 820
    assert pooled["clean"]["ai_caught"] == pytest.approx(entry["clean"]["ai_caught"])
    card = model_card(
        {
            "name": "m", "version": "1", "backbone": "efficientnet_lite0", "input_size": 256,
            "threshold": 0.9, "uncertainty_band": [0.3, 0.9],
            "cross_collection": {"description": "D", "recipes": report, "bundled_recipe": "adapt:x"},
            "operating_point": {
                "rule": "new-source", "description": "R.",
                "measured": {"protocol": "cross-collection", **protocol.pooled_rates(report["adapt:x"])},
            },
        }
    )  # fmt: skip
    assert "## Cross-collection results" in card and "| adapt:x | B->A |" in card
    clean = pooled["clean"]
    assert (
        f"- Operating point (new-source): R. Measured at it, clean copies, cross-collection: "
        f"{clean['ai_caught']:.1%} of AI images caught, {clean['real_called_ai']:.1%} of real photos called AI"
    ) in card


def condition_rows(tier: str, traits: dict) -> list[dict]:
    """Validation and test scores where the copies at `tier` sit 1 lower in log-odds (upscaling or heavy
    compression reads as a real photo), each copy with `traits` (`small`, `jpeg_quality`; none: {})."""
    scores = synthetic()[1]
    lower = scores / (scores + (1 - scores) * np.e)
    return [
        row
        for split in ("val", "test")
        for row in scored_rows("probe", "A->B", split, "clean", scores)
        + scored_rows("probe", "A->B", split, tier, lower, **traits)
    ]


@pytest.mark.parametrize(
    "condition, tier, traits",
    [
        ("small_image", "web_256_q75", {"small": True}),
        ("compressed_image", "web_512_q40", {"jpeg_quality": 40}),
    ],
)
def test_report_decides_the_images_of_a_condition_by_a_rule_fitted_on_its_copies(
    tmp_path, condition, tier, traits
):
    caught = {}
    for marked in (True, False):
        folder = tmp_path / str(marked)
        folder.mkdir()
        write_scores(folder / "scores.csv", condition_rows(tier, traits if marked else {}))
        entry = protocol.write_report(folder)["probe"]["A->B"]
        rule = entry[f"{condition}_rule"]  # fitted either way; it decides only the images that meet it
        assert rule["threshold"] < entry["threshold"]
        if marked:
            assert entry[tier]["worst_real_source_called_ai"] <= 0.03  # the rule holds on its copies
        caught[marked] = entry[tier]["ai_caught"]
        clean = entry["clean"]
    assert caught[True] > caught[False]  # the main rule misses the copies that score low
    assert clean["worst_real_source_called_ai"] <= 0.03  # the clean images meet no condition: the main rule


def test_score_files_without_a_jpeg_quality_read_as_meeting_no_compression_condition(tmp_path):
    rows = condition_rows("web_512_q40", {"jpeg_quality": 40})
    with (tmp_path / "scores.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=protocol_columns()[:-1], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    groups = protocol.read_scores(tmp_path / "scores.csv")
    assert set(groups[("probe", "A->B", "test", "web_512_q40")]["conditions"]) == {None}


def test_final_split_holds_out_calibration_sources_and_a_fifth_of_the_in_distribution_set():
    items = [protocol.Item(f"d/{i}.jpg", i % 2, "s", protocol.IN_DISTRIBUTION) for i in range(500)]
    items += [
        protocol.Item(f"w/{i}.jpg", REAL, protocol.CALIBRATION_SOURCES[0], "wild-dev") for i in range(30)
    ]
    parts = protocol.final_split(items, seed=42)
    assert len(parts["calibration"]) == 30
    assert 70 <= len(parts["in_distribution"]) <= 130
    assert parts == protocol.final_split(items, seed=42)
    assert len(parts["train"]) + len(parts["in_distribution"]) + len(parts["calibration"]) == 530


def test_an_ensemble_is_the_mean_log_odds_of_its_members_on_the_same_images(tmp_path):
    def rows(recipe, scores, prefix="img"):
        return [
            {
                "recipe": recipe,
                "direction": direction,
                "split": split,
                "tier": "clean",
                "collection": "c",
                "path": f"{prefix}/{i}.jpg",
                "label": i % 2,
                "source": f"s{i % 4}",
                "score": score,
            }
            for direction in ("A->B", "B->A")
            for split in ("val", "test")
            for i, score in enumerate(scores)
        ]

    write_scores(tmp_path / "scores.csv", rows("a", [0.2, 0.9] * 20) + rows("b", [0.5, 0.5] * 20))
    scores = protocol.read_scores(tmp_path / "scores.csv")
    combined = protocol.combine(scores, ["a", "b"])
    expected = 1 / (1 + np.exp(-(np.log(0.9 / 0.1) + 0.0) / 2))
    assert combined[("a+b", "A->B", "test", "clean")]["scores"][1] == pytest.approx(expected)
    assert set(protocol.write_report(tmp_path, (["a", "b"],))) == {"a", "b", "a+b"}

    write_scores(tmp_path / "scores.csv", rows("a", [0.2] * 4) + rows("b", [0.2] * 4, prefix="other"))
    with pytest.raises(ValueError, match="different images"):
        protocol.combine(protocol.read_scores(tmp_path / "scores.csv"), ["a", "b"])


def test_a_probe_chooses_its_strength_by_the_auc_of_validation_sources():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)

    def images(n: int):
        labels = np.tile([REAL, AI], n // 2)
        return rng.normal(size=(n, 40)) + 0.5 * labels[:, None] * (np.arange(40) < 3), labels

    train, val = images(60), images(200)
    probe, chosen, val_auc = protocol.fit_probe(train, val, (1e-3, 1.0, 100.0))
    assert chosen == max(val_auc, key=val_auc.get)
    scaler = StandardScaler().fit(train[0])
    by_hand = LogisticRegression(C=100.0, max_iter=3000).fit(scaler.transform(train[0]), train[1])
    expected = roc_auc_score(val[1], by_hand.predict_proba(scaler.transform(val[0]))[:, 1])
    assert val_auc[100.0] == pytest.approx(expected)
    assert len(set(val_auc.values())) == 3  # the strengths really differ
    assert probe.predict_proba(val[0]).shape == (200, 2)

    _, given, none = protocol.fit_probe(train, None, (0.5,))
    assert (given, none) == (0.5, {})


def test_out_of_source_scores_come_from_models_that_never_saw_the_source():
    sources = np.repeat([f"s{i}" for i in range(12)], 10)
    labels = np.repeat(np.tile([REAL, AI], 6), 10)
    ids = np.array([int(s[1:]) for s in sources], dtype=float)
    x = np.column_stack([ids, labels])  # the source's id travels with each image
    fitted_on = []

    def fit(x, labels, held_sources):
        assert set(held_sources) == {f"s{int(i)}" for i in x[:, 0]}  # each image's own source comes along
        seen = set(x[:, 0])
        fitted_on.append((seen, set(labels)))
        return lambda held: np.where(np.isin(held[:, 0], list(seen)), -1.0, held[:, 1])

    thumbnails = np.column_stack([ids, 1 - labels])  # another copy of the same images, row for row
    scores = protocol.out_of_source_scores(fit, x, labels, sources, folds=4, seed=0, copies=[thumbnails])
    assert len(fitted_on) == 4  # one model per fold scores both copies
    assert all(classes == {REAL, AI} for _, classes in fitted_on)  # each fold keeps both classes
    np.testing.assert_array_equal(scores[0], labels)  # every image scored, by a model without its source
    np.testing.assert_array_equal(scores[1], 1 - labels)  # and its copy by the same model
    one_ai_source = np.where(labels == AI, "generator", sources)
    assert protocol.out_of_source_scores(fit, x, labels, one_ai_source, folds=4, seed=0) is None


def test_fold_models_also_train_on_their_images_trained_copies_and_never_on_the_held_ones():
    sources = np.repeat([f"s{i}" for i in range(8)], 5)
    labels = np.repeat(np.tile([REAL, AI], 4), 5)
    ids = np.array([int(s[1:]) for s in sources], dtype=float)
    x = np.column_stack([ids, np.zeros(len(ids))])
    chained = np.column_stack([ids, np.ones(len(ids))])  # a processing-chain copy of each image
    trained = []

    def fit(x, fit_labels, fit_sources):
        trained.append(x)
        originals, copies = x[x[:, 1] == 0], x[x[:, 1] == 1]
        np.testing.assert_array_equal(originals[:, 0], copies[:, 0])  # each kept image's copy, in order
        assert list(fit_sources) == [f"s{int(i)}" for i in x[:, 0]]  # sources repeated row for row
        assert list(fit_labels) == list(labels[x[:, 0].astype(int) * 5])  # labels too (five per source)
        return lambda held: np.zeros(len(held))

    scores = protocol.out_of_source_scores(fit, x, labels, sources, 4, 0, trained_copies=[chained])
    assert scores.shape == (1, 40) and len(trained) == 4
    # Each fold model saw six of the eight sources: their 30 images and the 30 copies, none of the held ones'.
    assert all(len(np.unique(fold_x[:, 0])) == 6 and len(fold_x) == 60 for fold_x in trained)


def test_with_copies_stacks_copies_under_the_images_and_repeats_labels_and_sources():
    x, labels, sources = np.arange(6.0).reshape(3, 2), np.array([REAL, AI, AI]), np.array(["a", "b", "b"])
    stacked, repeated, of = protocol.with_copies(x, labels, sources, [x + 10, x + 20])
    np.testing.assert_array_equal(stacked, np.concatenate([x, x + 10, x + 20]))
    assert list(repeated) == [REAL, AI, AI] * 3 and list(of) == ["a", "b", "b"] * 3


def test_source_balanced_weights_give_every_source_of_a_class_the_same_weight():
    labels = np.array([REAL] * 400 + [REAL] * 10 + [AI] * 90)
    sources = np.array(["game"] * 400 + ["camera"] * 10 + ["generator"] * 90)
    weights = protocol.source_balanced_weights(labels, sources)
    assert weights.mean() == pytest.approx(1.0)
    totals = {source: weights[sources == source].sum() for source in ("game", "camera", "generator")}
    assert totals["game"] == pytest.approx(totals["camera"])
    assert totals["game"] + totals["camera"] == pytest.approx(totals["generator"])


def test_a_source_balanced_probe_does_not_let_its_largest_source_set_the_boundary():
    """A small real source close to the AI images: unweighted, the 400 photos of a far source decide where the
    boundary goes and the small one is scored as AI-like; balanced, it weighs as much and is scored lower."""
    rng = np.random.default_rng(0)
    far, near, ai = rng.normal(-3, 1, (400, 1)), rng.normal(0.8, 0.5, (15, 1)), rng.normal(2, 1, (200, 1))
    x = np.concatenate([far, near, ai])
    labels = np.array([REAL] * 415 + [AI] * 200)
    sources = np.array(["far"] * 400 + ["near"] * 15 + ["generator"] * 200)
    plain = protocol.fit_probe((x, labels), None, (1.0,))[0]
    balanced = protocol.fit_probe((x, labels), None, (1.0,), sources)[0]
    assert balanced.predict_proba(near)[:, 1].mean() < plain.predict_proba(near)[:, 1].mean() - 0.05
    fit = protocol.probe_fitter(1.0, balance_sources=True)
    np.testing.assert_allclose(fit(x, labels, sources)(near), balanced.predict_proba(near)[:, 1])


def real_sources(rng, count: int, photos: int = 150, spread: float = 1.0):
    """Real sources whose scores (log-odds) sit around a level of their own: N(level, 1), level ~ N(-3, spread)."""
    levels = rng.normal(-3, spread, count)
    logits = np.concatenate([rng.normal(level, 1, photos) for level in levels])
    return 1 / (1 + np.exp(-logits)), np.repeat([f"camera{i}" for i in range(count)], photos)


def test_the_new_source_rule_keeps_an_unseen_source_under_the_limit_more_often_than_the_worst_seen_one():
    rng = np.random.default_rng(0)
    kept = {"per-source": 0, "new-source": 0}
    trials = 200
    for _ in range(trials):
        scores, sources = real_sources(rng, 5, spread=2.0)
        labels = np.full(len(scores), REAL)
        unseen, _ = real_sources(rng, 1, spread=2.0)
        for rule in kept:
            threshold = protocol.choose_operating_point(labels, scores, sources, rule=rule).threshold
            kept[rule] += np.mean(unseen >= threshold) <= protocol.MAX_REAL_CALLED_AI
    # Five sources seen: the worst of them covers a sixth about 5 times in 6 (167 of 200); the bound about
    # 19 in 20 (195).
    assert kept["new-source"] / trials >= 0.93
    assert kept["per-source"] / trials <= 0.88


def test_the_new_source_bound_widens_with_the_spread_of_the_sources_and_needs_three():
    rng = np.random.default_rng(1)
    narrow, sources = real_sources(rng, 6, spread=0.2)
    wide, _ = real_sources(rng, 6, spread=1.5)
    labels = np.full(len(narrow), REAL)
    assert protocol.new_source_threshold(labels, wide, sources) > protocol.new_source_threshold(
        labels, narrow, sources
    )
    two = np.isin(sources, ["camera0", "camera1"])
    assert protocol.new_source_threshold(labels[two], wide[two], sources[two]) is None
    as_per_source = protocol.choose_operating_point(labels[two], wide[two], sources[two], rule="new-source")
    assert as_per_source == protocol.choose_operating_point(labels[two], wide[two], sources[two])


def test_the_rule_is_fitted_on_validation_and_the_training_images_scored_out_of_source(tmp_path):
    labels, scores, sources = synthetic()
    calm = sources != "noisy"  # validation holds only the calm real source; out of source, the noisy one

    def rows(split, keep, direction="A->B"):
        return [
            {
                "recipe": "frozen",
                "direction": direction,
                "split": split,
                "tier": "clean",
                "collection": "c",
                "path": f"{split}/{i}.jpg",
                "label": int(labels[i]),
                "source": sources[i],
                "score": f"{scores[i]:.6f}",
            }  # fmt: skip
            for i in np.flatnonzero(keep)
        ]

    held_out = rows("val", calm) + rows("test", np.ones_like(calm))
    write_scores(tmp_path / "scores.csv", held_out)
    validation_only = protocol.write_report(tmp_path)["frozen"]["A->B"]
    write_scores(tmp_path / "scores.csv", held_out + rows("out_of_source", ~calm))
    both = protocol.write_report(tmp_path)["frozen"]["A->B"]

    assert validation_only["rule_fitted_on"] == {"splits": ["val"], "real_sources": 1}
    assert both["rule_fitted_on"] == {"splits": ["val", "out_of_source"], "real_sources": 2}
    assert validation_only["clean"]["real_sources_over_limit"].keys() == {"noisy"}
    assert both["clean"]["worst_real_source_called_ai"] <= 0.03  # the noisy source now sets the threshold
