"""tf.data input pipelines: parallel decode (through the one decode path), cache, augment, batch, prefetch.

Augmentation is for the training split only: the study's flips, rotations, zoom and brightness/contrast as
Keras preprocessing layers on each batch (keras-io style), then, image by image, the degradations the web
applies and no Keras layer does (down/up-scaling, mild blur, JPEG re-compression at random quality), so the
model cannot rely on pristine files.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
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
        image = ensure_min_side(image, spec.size, spec.fill)
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
        dataset = augmented(dataset, augment, spec, batch_size, seed)
        # Re-batched after the per-image degradations: the number of batches stays known (it sizes schedules).
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(math.ceil(len(samples) / batch_size)))
    else:
        if spec.mode == "crop":
            dataset = dataset.map(
                lambda image, label: (center_crop(image, spec.size), label), num_parallel_calls=AUTOTUNE
            )
        dataset = dataset.map(to_float, num_parallel_calls=AUTOTUNE).batch(batch_size, drop_remainder=False)
    # One thread per decode/augment call: the parallel calls already use every core, and nesting intra-op
    # threads inside them only competes with the training step.
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    return dataset.prefetch(AUTOTUNE).with_options(options)


def augmented(
    dataset: tf.data.Dataset, config: AugmentConfig, spec: InputSpec, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Batches of augmented training images: a random window in crop mode, the preprocessing layers on each
    batch, then each image's web degradations (after them, as the web degrades a photo after it is taken)."""
    if spec.mode == "crop":
        dataset = dataset.map(
            lambda image, label: (tf.image.random_crop(image, [spec.size, spec.size, 3]), label),
            num_parallel_calls=AUTOTUNE,
        )
    layers = augmentation_layers(config, seed)
    degrade = WebDegradations(config, spec, seed)
    return (
        dataset.map(to_float, num_parallel_calls=AUTOTUNE)
        .batch(batch_size, drop_remainder=False)
        .map(lambda images, labels: (layers(images, training=True), labels), num_parallel_calls=AUTOTUNE)
        .unbatch()
        .map(degrade, num_parallel_calls=AUTOTUNE)
        .batch(batch_size, drop_remainder=False)
    )


def augmentation_layers(config: AugmentConfig, seed: int = 42) -> keras.Sequential:
    """The study's augmentation as Keras preprocessing layers: horizontal flips, rotation by +-`rotation`
    turns and zoom by 1 +- `zoom` (reflected edges), brightness +-`brightness` of the range, contrast
    1 +- `contrast`. Each image of a batch draws its own; values stay in 0..255."""
    layers = []
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.rotation > 0:
        layers.append(keras.layers.RandomRotation(config.rotation, fill_mode="reflect", seed=seed + 1))
    if config.zoom > 0:
        layers.append(keras.layers.RandomZoom(config.zoom, fill_mode="reflect", seed=seed + 2))
    if config.brightness > 0:
        layers.append(keras.layers.RandomBrightness(config.brightness, value_range=(0, 255), seed=seed + 3))
    if config.contrast > 0:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed + 4))
    return keras.Sequential(layers or [keras.layers.Identity()], name="augmentation")


def to_float(image: tf.Tensor, label: tf.Tensor):
    return tf.cast(image, tf.float32), label


def center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    """The centre size x size window (the same window the inference path takes)."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (height - size) // 2, (width - size) // 2
    return image[top : top + size, left : left + size, :]


class WebDegradations:
    """Per-image degradations in plain TensorFlow ops (no Keras layer does them), cheap in tf.data's parallel
    threads: down- and back up-scaling, mild blur and JPEG re-compression, each with its probability."""

    def __init__(self, config: AugmentConfig, spec: InputSpec, seed: int = 42):
        self.config = config
        self.spec = spec
        self.rng = tf.random.Generator.from_seed(seed)

    def __call__(self, image: tf.Tensor, label: tf.Tensor):
        size, config = self.spec.size, self.config
        x = tf.clip_by_value(image, 0.0, 255.0)
        x = self._maybe(config.rescale_probability, lambda t: self._rescale(t, size), x)
        x = self._maybe(config.blur_probability, self._blur, x)
        x = tf.clip_by_value(x, 0.0, 255.0)
        x = self._maybe(config.jpeg_probability, self._jpeg, x)
        # Whole levels, as a decoded file has (the layers before leave fractions).
        x = tf.round(tf.clip_by_value(x, 0.0, 255.0))
        x.set_shape([size, size, 3])
        return x, label

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
