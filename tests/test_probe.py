"""The linear probe (`train --probe`): every stage pooled, a logistic regression, an out-of-source rule."""

from __future__ import annotations

import json

import imagegen
import keras
import numpy as np
import pytest
from PIL import Image
from test_cli import run_cli, run_cli_process

from realcheck.model.artifacts.artifact import load_artifact
from realcheck.model.data.imaging import load_model_input
from realcheck.model.evaluation.protocol import PROBE_STRENGTHS, fit_probe
from realcheck.model.networks.architecture import StagePooling, build_model, feature_extractor
from realcheck.model.scoring.gradcam import GradCam
from realcheck.model.scoring.inference import load_detector
from realcheck.model.settings import InputSpec
from realcheck.model.training.probe import PROBE_HEAD, set_linear_head

# Builds backbones in the test process (scripts/test.sh runs these in a pytest of their own) and trains and
# exports an ImageNet one in children of gigabytes (run first, beside a small test process).
pytestmark = [pytest.mark.trains, pytest.mark.heavy_children]

PROBE = ["--probe", "--backbone", "efficientnet_lite0", "--weights", "imagenet", "--input-mode", "crop"]


@pytest.fixture(scope="module")
def sourced_dataset(tmp_path_factory):
    """Four sources per class (sub-folders name them), eight 48-px images each."""
    root = tmp_path_factory.mktemp("sourced")
    for source in range(4):
        for index in range(8):
            imagegen.write_image(
                root / "real" / f"camera{source}" / f"{index}.png", "real", seed=source * 50 + index
            )
            imagegen.write_image(
                root / "fake" / f"generator{source}" / f"{index}.png", "ai", seed=900 + source * 50 + index
            )
    return root


@pytest.fixture(scope="module")
def probe_artifact(tmp_path_factory, sourced_dataset):
    """Trained by the CLI in its own process, so the gigabytes of an ImageNet backbone go when it exits."""
    out = tmp_path_factory.mktemp("probe") / "probe"
    done = run_cli_process(
        "train", "--data", str(sourced_dataset), "--out", str(out), *PROBE, "--training-size", "32",
        "--input-size", "64", "--small-images", "mirror", "--batch-size", "16", "--split-by", "source",
        "--operating-point", "new-source",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_linear_head_gives_the_logistic_regressions_probabilities():
    keras.utils.set_random_seed(0)
    model = build_model("efficientnet_lite0", 32, None, PROBE_HEAD, input_mode="crop", pooling="stages")
    images = np.random.default_rng(0).integers(0, 256, (24, 40, 40, 3)).astype(np.float32)
    features = np.asarray(feature_extractor(model).predict_on_batch(images))
    assert features.shape[1] == 3 * sum(
        int(layer.input.shape[-1]) for layer in model.layers if isinstance(layer, StagePooling)
    )
    labels = np.tile([0, 1], 12)
    pipeline = fit_probe((features, labels), None, (0.1,))[0]
    set_linear_head(model, pipeline)
    np.testing.assert_allclose(
        np.asarray(model.predict_on_batch(images)).reshape(-1),
        pipeline.predict_proba(features)[:, 1],
        atol=1e-5,
    )


def test_train_probe_records_its_strength_and_fits_its_rule_out_of_source(probe_artifact):
    metadata = json.loads((probe_artifact / "metadata.json").read_text())
    assert metadata["pooling"] == "stages" and metadata["head"]["units"] == 0
    assert metadata["probe"]["c"] in PROBE_STRENGTHS and metadata["probe"]["source_balanced"]
    assert set(map(float, metadata["probe"]["validation_auc"])) == set(PROBE_STRENGTHS)
    assert metadata["probe"]["scored_out_of_source"] == metadata["training_data"]["splits"]["train"]["n"]
    assert metadata["calibration"]["fitted_on"] == "val + out-of-source training"
    assert metadata["threshold"] == metadata["uncertainty_band"][1]
    assert metadata["metrics"]["test"]["roc_auc"] > 0.5
    # A rule of its own for small images and for heavily compressed ones, each fitted the same way on copies
    # that meet its condition.
    small, compressed = metadata["small_image_rule"], metadata["compressed_image_rule"]
    for rule in (small, compressed):
        assert rule["threshold"] == rule["uncertainty_band"][1] >= 0.5
        assert "scored out of source" in rule["fitted_on"]
    assert small["applies_to"] == "images of 42 px or less on their shorter side"
    assert "at most 42 px on their longer side saved as JPEG q75" in small["fitted_on"]
    assert compressed["applies_to"] == "JPEG files saved at quality 50 or less"
    assert "at most 85 px on their longer side saved as JPEG q40" in compressed["fitted_on"]
    card = (probe_artifact / "README.md").read_text()
    assert (
        f"Decision for images of 42 px or less on their shorter side: `ai` when P(AI) >= {small['threshold']:.4f}"
        in card
    )
    assert (
        f"Decision for JPEG files saved at quality 50 or less: `ai` when P(AI) >= {compressed['threshold']:.4f}"
        in card
    )


def test_a_probe_trained_on_mirrored_small_images_is_served_mirroring_them(probe_artifact, sourced_dataset):
    # The 48-px images are smaller than the 64-px window: served as trained, mirrored and never upscaled.
    detector = load_detector(probe_artifact)
    assert detector.spec == InputSpec(64, "crop", "mirror")
    image = sourced_dataset / "real" / "camera0" / "0.png"
    window = detector.pixels(image)
    np.testing.assert_array_equal(window[8:56, 8:56], np.asarray(Image.open(image).convert("RGB")))
    card = (probe_artifact / "README.md").read_text()
    assert "mirrored at its edges, never resampled" in card
    # An image of at most two thirds of the window is small: its own rule decides it, and every record
    # gives that rule's ranges.
    assert detector.predict([image])[0].image_rule == "main"
    prediction = detector.predict([Image.open(image).reduce(2)])[0]
    small_rule = detector.rules.rule_for("small_image")
    assert prediction.image_rule == "small_image" and prediction.rule == small_rule != detector.rule
    assert prediction.record()["ai_above"] == small_rule.ranges()[1]


def test_a_probe_artifact_exports_to_onnx_with_the_same_scores(probe_artifact, tmp_path):
    done = run_cli_process(
        "export", "--model", str(probe_artifact), "--format", "onnx", "--out", str(tmp_path / "m.onnx")
    )
    assert done.returncode == 0, done.stderr
    assert "max difference from Keras" in done.stdout


def test_grad_cam_reads_the_deepest_pooled_stage_of_a_probe(probe_artifact, sourced_dataset):
    model, _ = load_artifact(probe_artifact)
    explainer = GradCam(model)
    assert explainer.layer_name == "stage6_pool"
    image = load_model_input(sourced_dataset / "fake" / "generator0" / "0.png", InputSpec(48, "crop"))
    heatmap = explainer.heatmap(image, "ai")
    assert heatmap.shape == (48, 48) and heatmap.min() >= 0 and heatmap.max() <= 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--probe", "--backbone", "efficientnet_lite0"], "--input-mode crop"),
        (["--probe", "--backbone", "resnet50", "--input-mode", "crop"], "--input-mode crop"),
        ([*PROBE, "--search"], "drop --search"),
        ([*PROBE[:-4], "--weights", "none", "--input-mode", "crop"], "drop --search"),
    ],
)
def test_the_probe_refuses_what_it_cannot_do(capsys, sourced_dataset, tmp_path, flags, message):
    status, _, err = run_cli(
        capsys, "train", "--data", str(sourced_dataset), "--out", str(tmp_path / "o"), *flags
    )
    assert status == 2 and message in err
