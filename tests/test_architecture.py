"""Backbones under the study's head: shapes, preprocessing in the graph, freezing, weights handling."""

from __future__ import annotations

import time
import urllib.error

import keras
import numpy as np
import pytest

from realcheck.model.errors import RealCheckError, WeightsUnavailableError
from realcheck.model.networks import architecture


@pytest.mark.parametrize("backbone", ["resnet50", "vgg16", "efficientnetb0"])
def test_every_backbone_takes_raw_pixels_of_any_size(backbone):
    model = architecture.build_model(backbone, size=32, weights="none")
    for shape in [(2, 32, 32, 3), (1, 57, 91, 3)]:
        scores = model.predict_on_batch(np.random.default_rng(0).uniform(0, 255, shape).astype("float32"))
        assert scores.shape == (shape[0], 1)
        assert np.all((scores >= 0) & (scores <= 1))
    head = model.get_layer("head")
    assert [layer.name for layer in head.layers if isinstance(layer, keras.layers.Dense)] == [
        "head_dense",
        "score",
    ]
    assert head.get_layer("head_dense").units == 128


def test_caffe_preprocessing_flips_to_bgr_and_subtracts_the_mean():
    layer = architecture.BackbonePreprocessing("caffe")
    pixel = np.array([[[[10.0, 20.0, 30.0]]]], dtype="float32")
    np.testing.assert_allclose(
        np.asarray(layer(pixel))[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-5
    )
    np.testing.assert_allclose(np.asarray(architecture.BackbonePreprocessing("none")(pixel)), pixel)


def test_frozen_backbone_then_unfreeze_top_keeps_batchnorm_frozen():
    model = architecture.build_model("resnet50", size=32, weights="none")
    base = architecture.backbone_of(model)
    assert not base.trainable
    assert len(model.trainable_weights) == 4  # the head's two Dense layers only
    count = architecture.unfreeze_top(model, "resnet50")
    assert count > 0
    assert not any(
        layer.trainable for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert base.get_layer("conv5_block3_3_conv").trainable
    assert not base.get_layer("conv4_block1_1_conv").trainable


def test_head_params_change_the_head():
    params = architecture.HeadParams(units=64, dropout=0.3, extra_layer=True, l2=1e-4)
    head = architecture.build_head(2048, params)
    names = [layer.name for layer in head.layers]
    assert names == ["features", "head_dropout", "head_dense", "head_dense_2", "score"]
    assert architecture.HeadParams.from_dict(params.to_dict()) == params


def test_unknown_backbone():
    with pytest.raises(RealCheckError, match="unknown backbone 'alexnet'"):
        architecture.build_model("alexnet", 32, "none")


def test_local_weights_file_is_loaded(tmp_path):
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "effnet.weights.h5"
    source.save_weights(path)
    loaded = architecture.build_backbone("efficientnetb0", 32, str(path))
    for expected, actual in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(expected, actual)


def test_weights_file_that_does_not_fit(tmp_path):
    path = tmp_path / "vgg.weights.h5"
    keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(path)
    with pytest.raises(WeightsUnavailableError, match="cannot load weights file"):
        architecture.build_backbone("resnet50", 32, str(path))


def test_unreachable_imagenet_weights_fail_fast_with_instructions(monkeypatch, tmp_path):
    """The download is the boundary we cannot reach here: make it fail as an offline machine does."""
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils.os.path, "expanduser", lambda path: str(tmp_path) if path == "~" else path)
    started = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as error:
        architecture.build_model("resnet50", 32, "imagenet")
    assert time.perf_counter() - started < 60
    message = str(error.value)
    assert "could not download ImageNet weights for resnet50" in message
    assert "--weights none" in message and "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
