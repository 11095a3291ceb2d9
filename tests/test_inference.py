"""The Detector: one inference path for paths, bytes and PIL images; same scores after reload and export."""

from __future__ import annotations

import io
import shutil
import zipfile

import imagegen
import numpy as np
import pytest
from PIL import Image

from model.artifact import store_weights_as_float16
from model.export import export_onnx_in_child, run_onnx
from model.inference import load_detector
from model.labels import UNCERTAIN


@pytest.fixture(scope="module")
def detector(trained_artifact):
    return load_detector(trained_artifact)


def test_paths_bytes_and_pil_images_score_alike(detector, folder_dataset):
    path = folder_dataset / "fake" / "f000.png"
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        predictions = detector.predict([path, str(path), data, image])
    scores = [p.score for p in predictions]
    assert all(p.ok for p in predictions)
    assert max(scores) - min(scores) < 1e-6
    assert all(p.verdict in {"ai", "real", UNCERTAIN} for p in predictions)


def test_batched_scores_equal_single_scores(detector, folder_dataset):
    paths = sorted(folder_dataset.rglob("*.png"))[:9]
    batched = [p.score for p in detector.predict(paths, batch_size=4)]
    single = [detector.predict([p])[0].score for p in paths]
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_bad_images_get_an_error_and_the_rest_still_score(detector, folder_dataset):
    good = folder_dataset / "real" / "r001.png"
    predictions = detector.predict([good, b"not an image", b"", imagegen.image_bytes("ai", fmt="JPEG")[:200]])
    assert predictions[0].ok and predictions[0].score is not None
    assert [p.ok for p in predictions[1:]] == [False, False, False]
    assert "not an image" in predictions[1].error
    assert "empty" in predictions[2].error
    assert "truncated" in predictions[3].error


def test_any_size_and_mode(detector):
    sources = [Image.fromarray(imagegen.make_array("real", size)) for size in (16, 33, 200)]
    sources.append(Image.fromarray(imagegen.make_array("ai", 64)).convert("L"))
    assert all(p.ok for p in detector.predict(sources))


def test_reload_and_onnx_give_the_same_scores(trained_artifact, detector, folder_dataset, tmp_path):
    paths = sorted(folder_dataset.rglob("*.png"))[:6]
    before = np.array([p.score for p in detector.predict(paths)])
    after = np.array([p.score for p in load_detector(trained_artifact).predict(paths)])
    np.testing.assert_allclose(before, after, atol=1e-6)
    onnx_path = tmp_path / "m.onnx"
    export_onnx_in_child(trained_artifact, onnx_path)  # tf2onnx keeps its memory: not in the test process
    prepared = np.stack([detector.prepare(p) for p in paths]).astype("float32")
    np.testing.assert_allclose(run_onnx(onnx_path, prepared), before, atol=1e-4)


@pytest.mark.parametrize("band", [(0.3, 0.6), (0.45, 0.45)])
def test_verdicts_follow_threshold_and_band(trained_artifact, band):
    from model.artifact import read_metadata
    from model.inference import Detector

    detector = Detector(None, read_metadata(trained_artifact) | {"threshold": 0.45, "uncertainty_band": band})
    low, high = band
    assert detector.verdict(0.0) == "real" and detector.verdict(1.0) == "ai"
    assert detector.verdict(0.44) == ("uncertain" if high > low else "real")
    assert detector.verdict(0.46) == ("uncertain" if high > low else "ai")
    assert detector.verdict(0.29) == "real" and detector.verdict(0.61) == "ai"


def test_artifact_holds_weights_without_optimizer_state(trained_artifact):
    import h5py

    with zipfile.ZipFile(trained_artifact / "model.keras") as archive:
        weights = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(weights), "r") as store:
        assert "optimizer" not in store and "layers" in store


def test_float16_weights_keep_the_scores(trained_artifact, folder_dataset, tmp_path):
    compact = tmp_path / "float16"
    shutil.copytree(trained_artifact, compact)
    before, after = store_weights_as_float16(compact)
    assert after < 0.6 * before
    paths = sorted(folder_dataset.glob("*/*.png"))
    full = np.array([p.score for p in load_detector(trained_artifact).predict(paths)])
    half = np.array([p.score for p in load_detector(compact).predict(paths)])
    assert np.abs(full - half).max() < 1e-2
