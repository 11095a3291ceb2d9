"""tf.data pipelines: the same pixels as the inference path, augmentation on training data only."""

from __future__ import annotations

import numpy as np
import pytest

from realcheck.model.data.datasets import discover
from realcheck.model.data.imaging import load_model_input
from realcheck.model.data.pipeline import WebDegradations, augmentation_layers, make_dataset
from realcheck.model.settings import AugmentConfig, InputSpec


@pytest.mark.parametrize("mode", ["resize", "crop"])
def test_evaluation_batches_equal_the_inference_path(folder_dataset, mode):
    samples = discover(folder_dataset).samples[:10]
    spec = InputSpec(32, mode)
    images, labels = next(iter(make_dataset(samples, folder_dataset, spec, batch_size=10, training=False)))
    assert images.dtype.name == "float32" and images.shape == (10, 32, 32, 3)
    expected = np.stack([load_model_input(folder_dataset / s.path, spec) for s in samples]).astype("float32")
    np.testing.assert_array_equal(images.numpy(), expected)
    np.testing.assert_array_equal(labels.numpy(), [s.label for s in samples])


def test_training_data_is_shuffled_augmented_and_keeps_labels(folder_dataset):
    samples = discover(folder_dataset).samples
    spec = InputSpec(32, "resize")
    dataset = make_dataset(
        samples, folder_dataset, spec, batch_size=len(samples), training=True, augment=AugmentConfig(), seed=1
    )
    assert int(dataset.cardinality()) == 1  # known, though re-batched after the per-image degradations
    images, labels = next(iter(dataset))
    assert images.shape == (len(samples), 32, 32, 3)
    assert float(images.numpy().min()) >= 0 and float(images.numpy().max()) <= 255
    assert sorted(labels.numpy().tolist()) == sorted(s.label for s in samples)
    plain = {
        s.label: load_model_input(folder_dataset / s.path, spec) for s in samples
    }  # one per class is enough
    assert any(
        not np.array_equal(image, plain[int(label)]) for image, label in zip(images.numpy(), labels.numpy())
    )


def _only(**settings) -> AugmentConfig:
    """An augmentation with everything off but `settings`."""
    off = dict(
        flip=False,
        rotation=0,
        zoom=0,
        brightness=0,
        contrast=0,
        jpeg_probability=0,
        rescale_probability=0,
        blur_probability=0,
    )
    return AugmentConfig(**(off | settings))


def test_each_degradation_changes_the_image_but_not_its_shape():
    import tensorflow as tf

    spec = InputSpec(32, "resize")
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (32, 32, 3)), dtype=tf.float32)
    for config in (
        _only(jpeg_probability=1.0),
        _only(rescale_probability=1.0),
        _only(blur_probability=1.0),
    ):
        out, _ = WebDegradations(config, spec)(image, tf.constant(1.0))
        assert out.shape == (32, 32, 3) and out.dtype == tf.float32
        assert np.array_equal(out.numpy(), np.round(out.numpy()))  # whole levels, as a decoded file has
        assert not np.array_equal(out.numpy(), image.numpy())


def test_crop_mode_trains_on_random_native_windows(tmp_path):
    import imagegen

    imagegen.write_image(tmp_path / "real" / "a.png", "real", size=96)
    imagegen.write_image(tmp_path / "fake" / "b.png", "ai", size=96)
    samples = discover(tmp_path).samples
    dataset = make_dataset(
        samples, tmp_path, InputSpec(32, "crop"), 2, training=True, augment=_only(enabled=True), cache=None
    )
    first = [batch[0].numpy() for batch in dataset.take(1)][0]
    assert first.shape == (2, 32, 32, 3)
    crops = {next(iter(dataset))[0].numpy().tobytes() for _ in range(4)}
    assert len(crops) > 1  # a different window each epoch


def test_disk_cache(folder_dataset, tmp_path):
    samples = discover(folder_dataset).samples[:4]
    dataset = make_dataset(samples, folder_dataset, InputSpec(32), 4, cache=str(tmp_path / "cache" / "val"))
    # tf.data writes the cache file when an epoch runs to its end, so each pass reads every batch.
    first = [batch[0].numpy() for batch in dataset][0]
    assert list((tmp_path / "cache").glob("val*"))
    second = [batch[0].numpy() for batch in dataset][0]
    np.testing.assert_array_equal(first, second)


def test_geometric_and_colour_augmentations():
    import tensorflow as tf

    pixels = np.full((32, 32, 3), 100, np.uint8)  # mid-grey, so no change below clips
    pixels[:, :8] = 160  # a bright band on the left
    pixels[4:12, 20:28] = 60
    batch = tf.constant(pixels[np.newaxis], dtype=tf.float32)

    def augment(config: AugmentConfig, seed: int = 42) -> np.ndarray:
        return augmentation_layers(config, seed)(batch, training=True)[0].numpy()

    outcomes = set()
    for seed in range(12):
        flipped = augment(_only(flip=True), seed)
        if np.array_equal(flipped, pixels[:, ::-1]):
            outcomes.add("flipped")
        else:
            assert np.array_equal(flipped, pixels), "a flip must mirror the image or leave it as it is"
            outcomes.add("kept")
    assert outcomes == {"flipped", "kept"}, "over 12 seeds the flip must both fire and not fire"

    # Rotation and zoom resample about the centre: at (almost) zero they give the image back unshifted.
    still = augment(_only(rotation=1e-6, zoom=1e-6))
    assert np.abs(still - pixels).max() <= 1
    turned = [augment(_only(rotation=0.25), seed) for seed in range(4)]
    assert all(not np.allclose(t, pixels, atol=1) for t in turned)
    assert all(t.shape == (32, 32, 3) and t.min() >= 0 and t.max() <= 255 for t in turned)

    brighter = augment(_only(brightness=0.2), 1)
    shift = brighter - pixels
    unclipped = (brighter > 0) & (brighter < 255)
    assert np.ptp(shift[unclipped]) < 1e-3  # one offset everywhere

    contrasted = augment(_only(contrast=0.5), 1)
    assert np.allclose(contrasted.mean(axis=(0, 1)), pixels.mean(axis=(0, 1)), atol=3)
    assert not np.array_equal(contrasted, pixels)
