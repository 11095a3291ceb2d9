"""Adapting the backbone: partial fine-tuning on native-resolution crops with one processing history for both classes.

Frozen ImageNet features judge how an image looks; on collections the model never saw they stop near 0.65
balanced accuracy. This recipe (the bake-off's recipe c) trains the stem and early/middle blocks too, on
crops at native resolution, so the network can learn the pixel traces generators leave:

- every training image, real or AI, goes through the same random processing chain (downscale, JPEG 4:2:0
  at quality 60-98, sometimes twice) *before* the crop is cut, so file format, size and resampling carry
  no label ("Fake or JPEG?", B-Free);
- a share of the crops are patch-shuffled (tiles permuted): traces survive, scene semantics do not;
- the adapted weights are pulled toward their ImageNet values (L2-SP), BatchNorm keeps its statistics.

Backend-agnostic Keras (no TensorFlow import): the same code trains on this machine's CPU under TensorFlow
and on a lent GPU under the PyTorch or JAX backend, and the saved weights load in any of them.
"""

from __future__ import annotations

import io
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops
from PIL import Image

from realcheck.model.data.imaging import ensure_min_side, open_rgb
from realcheck.model.errors import RealCheckError
from realcheck.model.networks.architecture import backbone_of
from realcheck.model.settings import HeadParams
from realcheck.model.training.phases import compile_for_training, floats

log = logging.getLogger("realcheck")


# The recipe's own head: the study's Dense 128, with dropout since the backbone under it moves too.
ADAPT_HEAD = HeadParams(units=128, dropout=0.2)


@dataclass(frozen=True)
class ProcessingChain:
    """What a photo or a generated image goes through on its way to the web, applied alike to both classes."""

    downscale_probability: float = 0.5
    downscale_range: tuple[float, float] = (0.5, 1.0)
    jpeg_probability: float = 0.8
    jpeg_quality: tuple[int, int] = (60, 98)
    second_jpeg_probability: float = 0.3

    def apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        if rng.random() < self.downscale_probability:
            scale = rng.uniform(*self.downscale_range)
            size = (max(16, round(image.width * scale)), max(16, round(image.height * scale)))
            image = image.resize(
                size, Image.Resampling.LANCZOS if rng.random() < 0.5 else Image.Resampling.BILINEAR
            )
        if rng.random() < self.jpeg_probability:
            image = _jpeg(image, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
            if rng.random() < self.second_jpeg_probability:
                image = _jpeg(image, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        return image


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, subsampling="4:2:0")
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def patch_shuffle(crop: np.ndarray, tile: int, rng: np.random.Generator) -> np.ndarray:
    """The crop with its tile x tile patches permuted: local traces kept, the scene destroyed."""
    rows, cols = crop.shape[0] // tile, crop.shape[1] // tile
    tiles = crop[: rows * tile, : cols * tile].reshape(rows, tile, cols, tile, 3).swapaxes(1, 2)
    tiles = tiles.reshape(rows * cols, tile, tile, 3)[rng.permutation(rows * cols)]
    shuffled = tiles.reshape(rows, cols, tile, tile, 3).swapaxes(1, 2).reshape(rows * tile, cols * tile, 3)
    out = crop.copy()
    out[: rows * tile, : cols * tile] = shuffled
    return out


@dataclass(frozen=True)
class AdaptSettings:
    """The recipe's knobs (recorded in the artifact's metadata under `adaptation`)."""

    crop: int = 256
    batch_size: int = 32
    crops_per_image: int = 2
    head_epochs: int = 2
    epochs: int = 10
    head_learning_rate: float = 1e-3
    learning_rate: float = 2e-4
    trainable_until: str = "block10"  # the last trainable backbone layer's block ("all": every block)
    l2sp: float = 1e-2
    shuffle_probability: float = 0.25
    shuffle_tile: int = 32
    chain: ProcessingChain = ProcessingChain()
    seconds: float | None = None  # stop the adaptation phase after this long (a lent GPU's budget)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


class CropSequence(keras.utils.PyDataset):
    """Training batches: each image processed by the chain, then a random native crop, flip, maybe shuffled."""

    def __init__(
        self, images: list[np.ndarray], labels: np.ndarray, settings: AdaptSettings, seed: int, **kwargs
    ):
        super().__init__(**kwargs)
        self.images, self.labels, self.settings = images, np.asarray(labels, dtype=np.float32), settings
        self.seed, self.epoch = seed, 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        rng = np.random.default_rng((self.seed, self.epoch))
        return rng.permutation(np.repeat(np.arange(len(self.images)), self.settings.crops_per_image))

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.settings.batch_size)

    def __getitem__(self, index: int):
        picks = self.order[index * self.settings.batch_size : (index + 1) * self.settings.batch_size]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        batch = np.stack([self.crop(self.images[i], rng) for i in picks]).astype(np.float32)
        return batch, self.labels[picks]

    def crop(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        settings = self.settings
        image = ensure_min_side(settings.chain.apply(Image.fromarray(pixels), rng), settings.crop)
        top = int(rng.integers(0, image.height - settings.crop + 1))
        left = int(rng.integers(0, image.width - settings.crop + 1))
        crop = np.asarray(image.crop((left, top, left + settings.crop, top + settings.crop)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < settings.shuffle_probability:
            crop = patch_shuffle(crop, settings.shuffle_tile, rng)
        return crop

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


def load_images(paths: list[str | Path], workers: int = 1) -> list[np.ndarray]:
    """Each image decoded once through the one decode path, kept at native resolution."""

    def decode(path):
        return np.asarray(open_rgb(path), dtype=np.uint8)

    if workers <= 1:
        return [decode(p) for p in paths]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(decode, paths))


def set_adaptable(model: keras.Model, trainable_until: str | None) -> int:
    """Backbone convolutions from the stem up to `trainable_until`'s block trainable ("all": every one; None:
    none); BatchNorm frozen everywhere. Returns the number of trainable backbone layers."""
    base = backbone_of(model)
    names = {layer.name for layer in base.layers}
    if trainable_until not in {None, "all"} and f"{trainable_until}_project_bn" not in names:
        raise RealCheckError(
            f"no block {trainable_until!r} in {base.name}: --adapt-until names an EfficientNet-Lite block "
            f"(block0-15) or all"
        )
    base.trainable = True
    count, open_ = 0, trainable_until is not None
    for layer in base.layers:
        trainable = open_ and bool(layer.weights) and not isinstance(layer, layers.BatchNormalization)
        layer.trainable = trainable
        count += int(trainable)
        if trainable_until not in {None, "all"} and layer.name.startswith(f"{trainable_until}_project_bn"):
            open_ = False
    return count


class TowardInitial:
    """L2-SP: strength * ||w - w0||^2, pulling an adapted weight toward its pretrained value."""

    def __init__(self, initial: np.ndarray, strength: float):
        self.initial = ops.convert_to_tensor(initial)
        self.strength = strength

    def __call__(self, weight):
        return self.strength * ops.sum(ops.square(weight - self.initial))


def attach_l2sp(model: keras.Model, strength: float) -> list:
    """Pull every trainable backbone weight toward its current value; returns the variables to detach later."""
    if strength <= 0:
        return []
    variables = backbone_of(model).trainable_weights
    for variable in variables:
        variable.regularizer = TowardInitial(np.array(variable.numpy()), strength)
    return variables


class TimeLimit(keras.callbacks.Callback):
    """Stop at the end of the epoch that passes `seconds` (a lent GPU's minutes are few)."""

    def __init__(self, seconds: float | None):
        super().__init__()
        self.seconds, self.started = seconds, time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if self.seconds is not None and time.monotonic() - self.started > self.seconds:
            log.info("time limit reached after epoch %d", epoch + 1)
            self.model.stop_training = True


def adapt(
    model: keras.Model,
    train: CropSequence,
    val: tuple[np.ndarray, np.ndarray] | None,
    settings: AdaptSettings,
    verbose: int | str = 2,
) -> dict:
    """Head first on the frozen backbone, then the adaptation phase; the best epoch by validation AUC is kept."""
    history: dict[str, dict] = {}
    set_adaptable(model, None)
    if settings.head_epochs:
        compile_for_training(model, settings.head_learning_rate, settings.head_epochs * len(train))
        fit = model.fit(train, validation_data=val, epochs=settings.head_epochs, verbose=verbose)
        history["head"] = floats(fit.history)
    count = set_adaptable(model, settings.trainable_until)
    log.info(
        "adapting %d backbone layers (up to %s), L2-SP %g", count, settings.trainable_until, settings.l2sp
    )
    regularized = attach_l2sp(model, settings.l2sp)
    compile_for_training(model, settings.learning_rate, settings.epochs * len(train))
    callbacks: list = [TimeLimit(settings.seconds)]
    if val is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_auc", mode="max", patience=settings.epochs, restore_best_weights=True
            )
        )
    fit = model.fit(train, validation_data=val, epochs=settings.epochs, callbacks=callbacks, verbose=verbose)
    for variable in regularized:
        variable.regularizer = None
    set_adaptable(model, None)
    history["adapt"] = floats(fit.history)
    return history


def adapt_on_files(
    model: keras.Model,
    train: list[tuple[str | Path, int]],
    val: list[tuple[str | Path, int]],
    settings: AdaptSettings,
    seed: int,
    workers: int = 1,
    loader_processes: bool = False,
    verbose: int | str = 2,
) -> dict:
    """`adapt` on image files: (path, label) pairs; validation on the centre crop the inference path takes."""
    from realcheck.model.data.imaging import load_model_input
    from realcheck.model.settings import InputSpec

    loader_workers = max(1, workers - 2) if loader_processes else 1
    sequence = CropSequence(
        load_images([path for path, _ in train], workers),
        np.array([label for _, label in train]),
        settings,
        seed,
        workers=loader_workers,
        use_multiprocessing=loader_processes,
        max_queue_size=4 * loader_workers,
    )
    val_data = None
    if val:
        spec = InputSpec(settings.crop, "crop")
        val_x = np.stack([load_model_input(path, spec) for path, _ in val]).astype(np.float32)
        val_data = (val_x, np.array([label for _, label in val], dtype=np.float32))
    return adapt(model, sequence, val_data, settings, verbose)


def adapted_weights(model: keras.Model, trainable_until: str) -> dict[str, np.ndarray]:
    """The weights the recipe trains (the adapted backbone layers and the head), by variable path: all that
    differs from the ImageNet backbone, so a small file restores the model."""
    set_adaptable(model, trainable_until)
    weights = {variable.path: np.asarray(variable.numpy()) for variable in model.trainable_weights}
    set_adaptable(model, None)
    return weights


def load_adapted_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Put `adapted_weights` back into a model built the same way (on any Keras backend)."""
    variables = {variable.path: variable for variable in model.weights}
    missing = sorted(set(weights) - set(variables))
    if missing:
        raise ValueError(f"{len(missing)} adapted weights do not fit this model (first: {missing[0]})")
    for path, value in weights.items():
        variables[path].assign(value)
