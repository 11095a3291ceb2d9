"""Grad-CAM: shape and range on the real nested ResNet-50, and that it points at the evidence that drives
the score in a model whose evidence is known by construction."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from realcheck.model.networks.architecture import BackbonePreprocessing, build_model
from realcheck.model.scoring.gradcam import GradCam, gradcam, overlay, target_layer_name

SIZE = 32
HALF = SIZE // 2


def constructed_model() -> keras.Model:
    """A RealCheck-shaped model (resize -> preprocessing -> nested backbone -> pool -> head) whose score is
    sigmoid(4 * mean red - 4 * mean green): red raises P(AI), green lowers it, nothing else matters."""
    backbone_input = keras.Input((SIZE, SIZE, 3))
    # Strided like a real backbone, so the feature map (8x8) is coarser than the image.
    evidence = layers.Conv2D(2, 4, strides=4, use_bias=False, activation="relu", name="evidence")
    backbone = keras.Model(backbone_input, evidence(backbone_input), name="toy")
    kernel = np.zeros((4, 4, 3, 2), dtype=np.float32)
    kernel[:, :, 0, 0] = 1.0 / (16 * 255)  # channel 0: mean red of each 4x4 cell
    kernel[:, :, 1, 1] = 1.0 / (16 * 255)  # channel 1: mean green
    evidence.set_weights([kernel])

    features = keras.Input((2,), name="features")
    score_layer = layers.Dense(1, activation="sigmoid", name="score")
    head = keras.Model(features, score_layer(features), name="head")
    score_layer.set_weights([np.array([[4.0], [-4.0]], dtype=np.float32), np.zeros(1, dtype=np.float32)])

    image = keras.Input((None, None, 3), name="image")
    x = layers.Resizing(SIZE, SIZE, name="resize")(image)
    x = BackbonePreprocessing("none", name="backbone_preprocessing")(x)
    x = backbone(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(image, head(x), name="realcheck_toy")


def two_colour_image() -> np.ndarray:
    """Red top-right quadrant (the AI evidence), green bottom-left quadrant (the real evidence)."""
    image = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    image[:HALF, HALF:, 0] = 255
    image[HALF:, :HALF, 1] = 255
    return image


def quadrant_shares(heatmap: np.ndarray) -> dict[str, float]:
    total = float(heatmap.sum())
    assert total > 0, "the heatmap is empty"
    return {
        "top_left": float(heatmap[:HALF, :HALF].sum()) / total,
        "top_right": float(heatmap[:HALF, HALF:].sum()) / total,
        "bottom_left": float(heatmap[HALF:, :HALF].sum()) / total,
        "bottom_right": float(heatmap[HALF:, HALF:].sum()) / total,
    }


@pytest.fixture(scope="module")
def toy():
    return GradCam(constructed_model())


def test_the_constructed_score_depends_on_the_two_quadrants_as_designed(toy):
    image = two_colour_image()
    more_red = image.copy()
    more_red[HALF:, HALF:, 0] = 255
    scores = toy.model.predict_on_batch(np.stack([image, more_red]).astype(np.float32)).ravel()
    assert scores[0] == pytest.approx(0.5, abs=1e-6)
    assert scores[1] > 0.7


def test_ai_heatmap_falls_on_the_region_that_raises_the_score(toy):
    assert toy.layer_name == "evidence"
    shares = quadrant_shares(toy.heatmap(two_colour_image(), target="ai"))
    assert shares["top_right"] > 0.9, shares
    assert shares["bottom_left"] < 0.05, shares


def test_real_heatmap_falls_on_the_region_that_lowers_the_score(toy):
    shares = quadrant_shares(toy.heatmap(two_colour_image(), target="real"))
    assert shares["bottom_left"] > 0.9, shares
    assert shares["top_right"] < 0.05, shares


def test_an_image_without_evidence_for_a_class_gives_an_empty_map(toy):
    red_only = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    red_only[:HALF, :HALF, 0] = 255
    assert toy.heatmap(red_only, target="real").max() == 0.0
    assert quadrant_shares(toy.heatmap(red_only, target="ai"))["top_left"] > 0.9


def test_batched_maps_match_single_ones(toy):
    first = two_colour_image()
    second = np.ascontiguousarray(first[:, ::-1])  # mirrored: red now top-left
    batch = toy.heatmaps(np.stack([first, second]))
    np.testing.assert_allclose(batch[0], toy.heatmap(first), atol=1e-6)
    np.testing.assert_allclose(batch[1], toy.heatmap(second), atol=1e-6)
    assert quadrant_shares(batch[1])["top_left"] > 0.9


def test_resnet50_heatmap_shape_range_and_layer():
    model = build_model("resnet50", size=64, weights="none")
    explainer = GradCam(model)
    assert explainer.layer_name == "conv5_block3_out"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8)
    before = model.predict_on_batch(images.astype(np.float32))
    maps = explainer.heatmaps(images)
    assert maps.shape == (2, 64, 64) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0
    # Inference mode throughout: explaining must not move BatchNorm statistics or weights.
    np.testing.assert_allclose(model.predict_on_batch(images.astype(np.float32)), before, atol=1e-6)
    one = gradcam(model, images[0], target="real")
    assert one.shape == (64, 64) and one.min() >= 0.0 and one.max() <= 1.0


def test_target_layers_of_the_other_backbones():
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert target_layer_name(vgg) == "block5_conv3"


def test_bad_arguments_are_refused(toy):
    with pytest.raises(ValueError, match="target"):
        toy.heatmap(two_colour_image(), target="fake")
    with pytest.raises(ValueError, match="shape"):
        toy.heatmaps(np.zeros((SIZE, SIZE, 3)))


def test_overlay_keeps_the_image_size_and_colours_the_hot_region():
    image = np.full((40, 60, 3), 128, dtype=np.uint8)
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[:4, 4:] = 1.0  # hot top-right on a smaller map: overlay resizes it
    blended = np.asarray(overlay(image, heat), dtype=np.int32)
    assert blended.shape == (40, 60, 3)
    hot, cold = blended[5, 55], blended[35, 5]
    assert hot[0] > hot[2] and cold[2] > cold[0]  # red where the map is hot, blue where it is cold
