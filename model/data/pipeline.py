"""tf.data input pipelines: parallel decode (through the one decode path), cache, augment, batch, prefetch.

Augmentation is for the training split only: the study's flips, rotations, zoom and brightness/contrast,
then the degradations the web applies (down/up-scaling, mild blur, JPEG re-compression at random quality),
so the model cannot rely on pristine files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from realcheck.model.data.datasets import Sample
from realcheck.model.data.imaging import ensure_min_side, fit_to_input, open_rgb
from realcheck.model.settings import AugmentConfig, InputSpec

AUTOTUNE = tf.data.AUTOTUNE


def decode_for_training(path: str, spec: InputSpec) -> np.ndarray:
    """Pixels to cache: the model input in `resize` mode, the native image (>= size) in `crop` mode."""
    image = open_rgb(path)
    if spec.mode == "crop":
        image = ensure_min_side(image, spec.size)
    else:
        image = fit_to_input(image, spec)
    return np.asarray(image, dtype=np.uint8)


def make_dataset(
    samples: list[Sample],
    root: str | Path,
    spec: InputSpec,
    batch_size: int,
    training: bool = False,
    augment: AugmentConfig | None = None,
    cache: str | None = "memory",
    seed: int = 42,
) -> tf.data.Dataset:
    """A batched dataset of (float32 RGB 0..255, float32 label) from verified samples.

    `cache` is "memory", a file path prefix for an on-disk cache, or None. Training data is shuffled each
    epoch and augmented; evaluation data keeps its order and is never augmented.
    """
    root = Path(root)
    paths = [str(root / s.path) for s in samples]
    labels = np.array([s.label for s in samples], dtype=np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))

    def load(path, label):
        image = tf.numpy_function(
            lambda p: decode_for_training(p.decode("utf-8"), spec), [path], tf.uint8, stateful=False
        )
        image.set_shape([None, None, 3])
        return image, label

    dataset = dataset.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache == "memory":
        dataset = dataset.cache()
    elif cache:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        dataset = dataset.cache(str(cache))
    if training:
        dataset = dataset.shuffle(min(len(samples), 10_000), seed=seed, reshuffle_each_iteration=True)
    augment = augment or AugmentConfig(enabled=False)
    if training and augment.enabled:
        augmenter = Augmenter(augment, spec, seed)
        dataset = dataset.map(augmenter, num_parallel_calls=AUTOTUNE)
    elif spec.mode == "crop":
        dataset = dataset.map(
            lambda image, label: (center_crop(image, spec.size), label), num_parallel_calls=AUTOTUNE
        )
    dataset = dataset.map(
        lambda image, label: (tf.cast(image, tf.float32), label), num_parallel_calls=AUTOTUNE
    )
    # One thread per decode/augment call: the parallel calls already use every core, and nesting intra-op
    # threads inside them only competes with the training step.
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    return dataset.batch(batch_size, drop_remainder=False).prefetch(AUTOTUNE).with_options(options)


def center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    """The centre size x size window (the same window the inference path takes)."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (height - size) // 2, (width - size) // 2
    return image[top : top + size, left : left + size, :]


class Augmenter:
    """Per-image augmentation in plain TensorFlow ops, so it runs cheaply in tf.data's parallel threads.

    The study's flips, rotation, zoom, brightness and contrast (the distributions of Keras' Random* layers,
    with rotation and zoom in one resampling), then the web's degradations. Per-image Keras layers cost
    several times more here, and on a 2-core machine that time is taken from training.
    """

    def __init__(self, config: AugmentConfig, spec: InputSpec, seed: int = 42):
        self.config = config
        self.spec = spec
        self.rng = tf.random.Generator.from_seed(seed)

    def __call__(self, image: tf.Tensor, label: tf.Tensor):
        size = self.spec.size
        config = self.config
        if self.spec.mode == "crop":
            image = tf.image.random_crop(image, [size, size, 3], seed=None)
        x = tf.cast(image, tf.float32)
        if config.flip:
            x = self._maybe(0.5, tf.image.flip_left_right, x)
        if config.rotation > 0 or config.zoom > 0:
            x = self._rotate_and_zoom(x)
        if config.brightness > 0:
            x = x + self._uniform(-config.brightness, config.brightness) * 255.0
        if config.contrast > 0:
            x = tf.image.adjust_contrast(x, self._uniform(1.0 - config.contrast, 1.0 + config.contrast))
        x = tf.clip_by_value(x, 0.0, 255.0)
        x = self._maybe(config.rescale_probability, lambda t: self._rescale(t, size), x)
        x = self._maybe(config.blur_probability, self._blur, x)
        x = tf.clip_by_value(x, 0.0, 255.0)
        x = self._maybe(config.jpeg_probability, self._jpeg, x)
        image = tf.cast(tf.round(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8)
        image.set_shape([size, size, 3])
        return image, label

    def _rotate_and_zoom(self, x: tf.Tensor) -> tf.Tensor:
        """One bilinear resampling for both: rotation by +-rotation turns, zoom by 1 +- zoom, reflected edges."""
        angle = self._uniform(-self.config.rotation, self.config.rotation) * 2.0 * math.pi
        scale = 1.0 + self._uniform(-self.config.zoom, self.config.zoom)  # > 1 zooms out
        height, width = tf.cast(tf.shape(x)[0], tf.float32), tf.cast(tf.shape(x)[1], tf.float32)
        cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
        centre_x, centre_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
        # Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2): rotation and scale about the centre.
        transform = tf.stack(
            [
                cos,
                -sin,
                centre_x - cos * centre_x + sin * centre_y,
                sin,
                cos,
                centre_y - sin * centre_x - cos * centre_y,
                0.0,
                0.0,
            ]
        )[tf.newaxis]
        resampled = tf.raw_ops.ImageProjectiveTransformV3(
            images=x[tf.newaxis],
            transforms=transform,
            output_shape=tf.shape(x)[:2],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )
        return resampled[0]

    def _uniform(self, low: float, high: float) -> tf.Tensor:
        return self.rng.uniform([], low, high)

    def _maybe(self, probability: float, function, x: tf.Tensor) -> tf.Tensor:
        if probability <= 0:
            return x
        return tf.cond(self._uniform(0.0, 1.0) < probability, lambda: function(x), lambda: x)

    def _rescale(self, x: tf.Tensor, size: int) -> tf.Tensor:
        low, high = self.config.rescale_range
        small = tf.cast(tf.round(size * self._uniform(low, high)), tf.int32)
        x = tf.image.resize(x, [small, small], method="area", antialias=True)
        return tf.image.resize(x, [size, size], method="bilinear")

    def _blur(self, x: tf.Tensor) -> tf.Tensor:
        sigma = self._uniform(*self.config.blur_sigma)
        offsets = tf.range(-2, 3, dtype=tf.float32)
        kernel_1d = tf.exp(-(offsets**2) / (2.0 * sigma**2))
        kernel_1d /= tf.reduce_sum(kernel_1d)
        kernel = tf.tile(tf.reshape(tf.tensordot(kernel_1d, kernel_1d, axes=0), [5, 5, 1, 1]), [1, 1, 3, 1])
        blurred = tf.nn.depthwise_conv2d(x[tf.newaxis], kernel, strides=[1, 1, 1, 1], padding="SAME")
        return blurred[0]

    def _jpeg(self, x: tf.Tensor) -> tf.Tensor:
        low, high = self.config.jpeg_quality
        quality = tf.cast(self._uniform(float(low), float(high) + 1.0), tf.int32)
        encoded = tf.image.adjust_jpeg_quality(tf.cast(x, tf.uint8), quality)
        return tf.cast(encoded, tf.float32)
