"""Grad-CAM: where in an image a RealCheck model found the evidence behind its score.

Grad-CAM (Selvaraju et al., 2017) weights the feature maps of a late convolutional layer by the gradient of
the class score with respect to them, keeps the positive part and upsamples it to the image. For ResNet-50
the layer is the output of the last convolutional block (`conv5_block3_out`); for the other backbones it is
their last convolutional layer.

A RealCheck model nests its backbone as a sub-model (`realcheck.model.networks.architecture.build_model`), so the feature maps
are not outputs of the outer graph: `GradCam` builds a small model from the backbone's input to
[feature maps, backbone output] and runs the outer layers around it itself, all with `training=False`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import keras

# The last convolutional block (ResNet) or layer (VGG, EfficientNet) of each backbone RealCheck builds.
TARGET_LAYERS = {
    "resnet50": "conv5_block3_out",
    "vgg16": "block5_conv3",
    "efficientnetb0": "top_activation",
    "efficientnet_lite0": "top_relu6",
    "efficientnet_lite2": "top_relu6",
}
TARGETS = ("ai", "real")


def target_layer_name(backbone: keras.Model) -> str:
    """The layer Grad-CAM reads in `backbone`: the known one for RealCheck's backbones, else the last conv."""
    import keras

    known = TARGET_LAYERS.get(backbone.name.lower())
    names = {layer.name for layer in backbone.layers}
    if known in names:
        return known
    convolutions = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    for layer in reversed(backbone.layers):
        if isinstance(layer, convolutions):
            return layer.name
    from realcheck.model.errors import RealCheckError

    raise RealCheckError(f"backbone {backbone.name!r} has no convolutional layer for Grad-CAM")


class GradCam:
    """Grad-CAM for a RealCheck model; build once per model (it traces a TensorFlow function on first use).

    `heatmaps` takes the prepared input arrays of the one inference path (`Detector.prepare`: uint8 of
    shape (size, size, 3)) and returns, per image, a float32 map in [0, 1] of the same height and width.
    """

    def __init__(self, model: keras.Model, layer_name: str | None = None):
        import keras

        from realcheck.model.networks.architecture import StagePooling, backbone_of

        self.model = model
        self._compiled = None
        pools = [layer for layer in model.layers if isinstance(layer, StagePooling)]
        if pools:  # the probe pools every stage side by side (no chain): read the deepest stage it pools
            self.layer_name = pools[-1].name
            self._features_and_output = keras.Model(model.inputs, [pools[-1].input, model.output])
            self._before, self._after = [], []
            return
        backbone = backbone_of(model)
        self.layer_name = layer_name or target_layer_name(backbone)
        self._features_and_output = keras.Model(
            backbone.inputs, [backbone.get_layer(self.layer_name).output, backbone.output]
        )
        # build_model makes a chain: image -> resize -> preprocessing -> backbone -> pool -> head.
        chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        position = chain.index(backbone)
        self._before, self._after = chain[:position], chain[position + 1 :]

    @property
    def grid(self) -> tuple[int | None, int | None]:
        """Rows and columns of the feature map the heatmap is upsampled from (its real resolution)."""
        shape = self._features_and_output.outputs[0].shape
        return shape[1], shape[2]

    def heatmap(self, image: np.ndarray, target: str = "ai") -> np.ndarray:
        """Grad-CAM of one image (H, W, 3) for the class `target` ("ai" or "real"): (H, W) in [0, 1]."""
        return self.heatmaps(np.asarray(image)[None], target)[0]

    def heatmaps(self, images: np.ndarray, target: str = "ai") -> np.ndarray:
        """Grad-CAM of a batch (n, H, W, 3) of raw RGB 0..255: (n, H, W) float32 in [0, 1].

        `target` "ai" shows what raised P(AI), "real" what lowered it. A map of zeros means no region
        pushed the score that way (or the score is saturated and its gradient vanished).
        """
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        import tensorflow as tf

        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected images of shape (n, height, width, 3), got {images.shape}")
        if len(images) == 0:
            return np.zeros(images.shape[:3], dtype=np.float32)
        if self._compiled is None:
            self._compiled = tf.function(
                self._maps,
                input_signature=[
                    tf.TensorSpec([None, None, None, 3], tf.float32),
                    tf.TensorSpec([], tf.float32),
                ],
                reduce_retracing=True,
            )
        # The "real" class of a sigmoid output is 1 - P(AI): the same gradient with the opposite sign.
        sign = tf.constant(1.0 if target == "ai" else -1.0)
        maps = self._compiled(tf.convert_to_tensor(images), sign).numpy()
        return np.clip(maps, 0.0, 1.0).astype(np.float32)

    def _maps(self, images, sign):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            # Watch the input: a frozen backbone has no trainable variables for the tape to follow.
            tape.watch(images)
            x = images
            for layer in self._before:
                x = layer(x, training=False)
            features, y = self._features_and_output(x, training=False)
            for layer in self._after:
                y = layer(y, training=False)
            objective = sign * tf.reduce_sum(tf.cast(y, tf.float32))
        gradients = tf.cast(tape.gradient(objective, features), tf.float32)
        features = tf.cast(features, tf.float32)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1, keepdims=True))
        peak = tf.reduce_max(cam, axis=(1, 2, 3), keepdims=True)
        cam = tf.math.divide_no_nan(cam, peak)
        size = tf.shape(images)[1:3]
        return tf.image.resize(cam, size, method="bilinear")[..., 0]


def gradcam(model: keras.Model, image: np.ndarray, target: str = "ai") -> np.ndarray:
    """One-off Grad-CAM of one prepared image; reuse a `GradCam` for many images (it compiles once)."""
    return GradCam(model).heatmap(image, target)


def overlay(
    image: Image.Image | np.ndarray, heatmap: np.ndarray, alpha: float = 0.45, colormap: str = "jet"
) -> Image.Image:
    """The image with the heatmap blended over it in `colormap` (red = strong evidence, blue = none).

    The heatmap is resized to the image, so a map of the model's square input can be laid over the
    original picture when the model saw the whole picture resized.
    """
    from matplotlib import colormaps

    base = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    base = base.convert("RGB")
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != (base.height, base.width):
        heat = np.asarray(
            Image.fromarray(heat).resize(base.size, Image.Resampling.BILINEAR), dtype=np.float32
        )
    colours = colormaps[colormap](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * np.asarray(base, dtype=np.float32) + alpha * colours
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8))
