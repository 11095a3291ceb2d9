"""The backbone adaptation recipe: processing chain, crops, which layers train, L2-SP, weights that travel."""

from __future__ import annotations

import json

import imagegen
import keras
import numpy as np
import pytest
from conftest import TINY
from PIL import Image
from test_cli import run_cli

from realcheck.model.networks.architecture import backbone_of, build_model
from realcheck.model.training import adaptation

# Trains models in the test process, which grows by gigabytes: scripts/test.sh runs these in a pytest of their own.
pytestmark = pytest.mark.trains


def tiny_model():
    keras.utils.set_random_seed(0)  # the same initial weights each time, as ImageNet weights would be
    return build_model("efficientnet_lite0", 32, None, adaptation.ADAPT_HEAD, input_mode="crop")


def test_processing_chain_is_seeded_and_never_enlarges():
    image = Image.fromarray(imagegen.make_array("real", 96, seed=1))
    chain = adaptation.ProcessingChain(downscale_probability=1.0, jpeg_probability=1.0)
    first = chain.apply(image, np.random.default_rng(7))
    again = chain.apply(image, np.random.default_rng(7))
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert first.mode == "RGB" and first.width <= 96 and first.height <= 96
    assert not np.array_equal(np.asarray(first.resize(image.size)), np.asarray(image))
    untouched = adaptation.ProcessingChain(0.0, (0.5, 1.0), 0.0).apply(image, np.random.default_rng(7))
    assert np.array_equal(np.asarray(untouched), np.asarray(image))


def test_patch_shuffle_moves_tiles_and_keeps_them_whole():
    crop = np.arange(64 * 64 * 3, dtype=np.int64).reshape(64, 64, 3)
    shuffled = adaptation.patch_shuffle(crop, 16, np.random.default_rng(3))
    assert not np.array_equal(shuffled, crop)
    tiles = {crop[r : r + 16, c : c + 16].tobytes() for r in range(0, 64, 16) for c in range(0, 64, 16)}
    moved = {shuffled[r : r + 16, c : c + 16].tobytes() for r in range(0, 64, 16) for c in range(0, 64, 16)}
    assert tiles == moved


def test_crop_sequence_gives_native_crops_with_their_labels_and_reshuffles_each_epoch():
    images = [imagegen.make_array("real" if i % 2 else "ai", 40 + i, seed=i) for i in range(6)]
    labels = np.array([i % 2 == 0 for i in range(6)], dtype=np.float32)
    settings = adaptation.AdaptSettings(crop=32, batch_size=4, crops_per_image=2)
    sequence = adaptation.CropSequence(images, labels, settings, seed=5)
    assert len(sequence) == 3  # 12 crops in batches of 4
    x, y = sequence[0]
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.float32
    assert np.array_equal(y, labels[sequence.order[:4]])
    assert np.array_equal(sequence[0][0], x)  # the same epoch and batch give the same crops
    order = sequence.order.copy()
    sequence.on_epoch_end()
    assert sorted(sequence.order) == sorted(order) and not np.array_equal(sequence.order, order)


def test_set_adaptable_opens_the_stem_up_to_the_named_block_and_never_batchnorm():
    model = tiny_model()
    count = adaptation.set_adaptable(model, "block2")
    trainable = {layer.name for layer in backbone_of(model).layers if layer.trainable and layer.weights}
    assert count == len(trainable) and "stem_conv" in trainable and "block2_project_conv" in trainable
    assert "block3_expand_conv" not in trainable and not any(name.endswith("_bn") for name in trainable)
    every = adaptation.set_adaptable(model, "all")
    assert every > count and "top_conv" in {
        layer.name for layer in backbone_of(model).layers if layer.trainable
    }
    assert adaptation.set_adaptable(model, None) == 0


def test_adapt_trains_the_adapted_layers_only_and_detaches_its_regularizer():
    model = tiny_model()
    base = backbone_of(model)
    before = {
        name: base.get_layer(name).get_weights()[0].copy() for name in ("stem_conv", "top_conv", "stem_bn")
    }
    moving_mean = base.get_layer("stem_bn").get_weights()[2].copy()
    images = [imagegen.make_array("real" if i % 2 else "ai", 48, seed=i) for i in range(8)]
    labels = np.array([i % 2 == 0 for i in range(8)], dtype=np.float32)
    settings = adaptation.AdaptSettings(
        crop=32, batch_size=4, head_epochs=1, epochs=1, trainable_until="block1"
    )
    val = (np.stack([image[:32, :32] for image in images]).astype(np.float32), labels)
    history = adaptation.adapt(model, adaptation.CropSequence(images, labels, settings, 1), val, settings, 0)
    assert set(history) == {"head", "adapt"} and "val_auc" in history["adapt"]
    assert not np.allclose(base.get_layer("stem_conv").get_weights()[0], before["stem_conv"])
    assert np.array_equal(base.get_layer("top_conv").get_weights()[0], before["top_conv"])
    assert np.array_equal(base.get_layer("stem_bn").get_weights()[2], moving_mean)
    assert all(variable.regularizer is None for variable in model.weights)
    assert not backbone_of(model).trainable_weights  # frozen again once adapted: BatchNorm never moved


def test_l2sp_pulls_toward_the_initial_weights():
    model = tiny_model()
    adaptation.set_adaptable(model, "block0")
    variables = adaptation.attach_l2sp(model, 0.5)
    assert variables and float(sum(np.asarray(loss) for loss in model.losses)) == pytest.approx(0.0)
    variables[0].assign(variables[0].numpy() + 0.1)
    expected = 0.5 * 0.01 * variables[0].numpy().size
    assert float(sum(np.asarray(loss) for loss in model.losses)) == pytest.approx(expected, rel=1e-4)


def test_adapted_weights_restore_the_same_model():
    model = tiny_model()
    stem = backbone_of(model).get_layer("stem_conv")
    stem.set_weights([stem.get_weights()[0] + 0.05])
    saved = adaptation.adapted_weights(model, "block0")
    assert any("stem_conv" in path for path in saved) and not any("top_conv" in path for path in saved)
    again = tiny_model()
    adaptation.load_adapted_weights(again, saved)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    assert np.allclose(model.predict_on_batch(pixels), again.predict_on_batch(pixels), atol=1e-6)
    with pytest.raises(ValueError, match="do not fit"):
        adaptation.load_adapted_weights(again, {"no/such/variable": np.zeros(1)})


def test_train_adapts_and_sets_the_per_source_operating_point(capsys, folder_dataset, tmp_path):
    out = tmp_path / "adapted"
    status, _, err = run_cli(
        capsys,
        "train", "--data", str(folder_dataset), "--out", str(out), *TINY, "--input-mode", "crop",
        "--epochs", "1", "--adapt-until", "block1", "--adapt-epochs", "1", "--operating-point", "per-source",
    )  # fmt: skip
    assert status == 0, err
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["adaptation"]["trainable_until"] == "block1" and metadata["adaptation"]["crop"] == 32
    assert metadata["threshold"] == metadata["uncertainty_band"][1]
    assert metadata["head"]["dropout"] == adaptation.ADAPT_HEAD.dropout

    # Weights adapted elsewhere (a GPU) load instead of training here.
    model = tiny_model()
    stem = backbone_of(model).get_layer("stem_conv")
    stem.set_weights([stem.get_weights()[0] * 0 + 0.01])
    np.savez(tmp_path / "adapted.npz", **adaptation.adapted_weights(model, "block1"))
    loaded = tmp_path / "loaded"
    status, _, err = run_cli(
        capsys,
        "train", "--data", str(folder_dataset), "--out", str(loaded), *TINY, "--input-mode", "crop",
        "--epochs", "1", "--adapt-until", "block1", "--adapted-weights", str(tmp_path / "adapted.npz"),
    )  # fmt: skip
    assert status == 0, err
    from realcheck.model.artifacts.artifact import load_artifact

    artifact_model, metadata = load_artifact(loaded)
    assert np.allclose(backbone_of(artifact_model).get_layer("stem_conv").get_weights()[0], 0.01)
    assert metadata["adaptation"]["weights_file"].endswith("adapted.npz")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--adapt-until", "block1"], "give --input-mode crop"),
        (["--adapt-until", "block1", "--input-mode", "crop", "--search"], "drop --search"),
        (["--adapted-weights", "w.npz", "--input-mode", "crop"], "give --adapt-until too"),
        ([*TINY, "--adapt-until", "block99", "--input-mode", "crop", "--epochs", "0"], "no block 'block99'"),
    ],
)
def test_adaptation_refuses_what_it_cannot_do(capsys, folder_dataset, tmp_path, flags, message):
    status, _, err = run_cli(
        capsys, "train", "--data", str(folder_dataset), "--out", str(tmp_path / "o"), *flags
    )
    assert status == 2 and message in err
