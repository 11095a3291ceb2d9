"""The scoring core: one path for paths, bytes and PIL images; same scores after reload and export; decisions."""

from __future__ import annotations

import hashlib
import io
import itertools
import subprocess
import sys
import zipfile

import imagegen
import numpy as np
import provenancegen
import pytest
from PIL import Image
from serving import jpeg_bytes

from realcheck.model.artifacts.export import export_onnx_in_child, run_onnx
from realcheck.model.labels import UNCERTAIN
from realcheck.model.scoring.decision import DecisionRule, describe_rules
from realcheck.model.scoring.inference import load_detector
from realcheck.model.scoring.provenance import ProvenanceReader


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
    prepared = np.stack([detector.pixels(p) for p in paths]).astype("float32")
    np.testing.assert_allclose(run_onnx(onnx_path, prepared), before, atol=1e-4)


@pytest.mark.parametrize("band", [(0.3, 0.6), (0.45, 0.45)])
def test_verdicts_follow_threshold_and_band(trained_artifact, band):
    from realcheck.model.artifacts.artifact import read_metadata

    metadata = read_metadata(trained_artifact) | {"threshold": 0.45, "uncertainty_band": band}
    rule = DecisionRule.from_metadata(metadata)
    low, high = band
    assert rule.verdict(0.0) == "real" and rule.verdict(1.0) == "ai"
    assert rule.verdict(0.44) == ("uncertain" if high > low else "real")
    assert rule.verdict(0.46) == ("uncertain" if high > low else "ai")
    assert rule.verdict(0.29) == "real" and rule.verdict(0.61) == "ai"


def test_provenance_decides_in_the_core_and_only_with_a_reader(trained_artifact):
    declared = provenancegen.signed("trainedAlgorithmicMedia")
    plain = imagegen.image_bytes("real", fmt="JPEG")
    with_reader = load_detector(trained_artifact, provenance=ProvenanceReader())
    declared_result, plain_result = with_reader.predict([declared, plain])
    assert declared_result.verdict == "ai" and declared_result.basis == "provenance"
    assert declared_result.model_verdict == with_reader.rule.verdict(declared_result.score)
    assert declared_result.provenance.declares_ai
    assert plain_result.basis == "model" and plain_result.verdict == plain_result.model_verdict
    assert declared_result.sha256 == hashlib.sha256(declared).hexdigest()
    # Without a reader (training, evaluation) the model alone decides, on the same score.
    [model_only] = load_detector(trained_artifact).predict([declared])
    assert model_only.basis == "model" and model_only.verdict == model_only.model_verdict
    # Same score up to float rounding: one image alone and two in a batch take different oneDNN kernels.
    assert model_only.score == pytest.approx(declared_result.score, abs=1e-5)


def test_a_lazy_source_is_read_only_as_batches_fill(detector, folder_dataset):
    paths = sorted(folder_dataset.rglob("*.png"))
    taken = []

    def sources():
        for path in paths:
            taken.append(path)
            yield path

    results = detector.iter_predict(sources(), batch_size=2)
    assert [index for index, _ in itertools.islice(results, 2)] == [0, 1]
    assert len(taken) == 2  # the first batch was scored before a third file was read


def test_a_file_too_large_for_the_pixel_limit_is_refused_unread(trained_artifact, tmp_path):
    small_limit = load_detector(trained_artifact, max_pixels=1_000)
    huge = tmp_path / "huge.png"
    huge.write_bytes(imagegen.image_bytes("real", fmt="PNG") + b"\0" * 9_000)
    [result] = small_limit.predict([huge])
    assert not result.ok and "file too large" in result.error and result.score is None
    [missing] = small_limit.predict([tmp_path / "missing.png"])
    assert missing.error.startswith("no such file") and missing.sha256 is None
    [broken] = small_limit.predict([b"not an image"])
    assert broken.error and broken.sha256 == hashlib.sha256(b"not an image").hexdigest()


def test_serving_imports_neither_scikit_learn_nor_tensorflow_up_front():
    code = (
        "import sys; from realcheck.model.scoring import inference; from realcheck.server import service, backends, queries, app; "
        "print(sorted(m for m in ('sklearn', 'tensorflow') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_artifact_holds_weights_without_optimizer_state(trained_artifact):
    import h5py

    with zipfile.ZipFile(trained_artifact / "model.keras") as archive:
        weights = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(weights), "r") as store:
        assert "optimizer" not in store and "layers" in store


def test_each_image_is_decided_by_the_rule_for_its_condition(condition_rules_artifact):
    detector = load_detector(condition_rules_artifact)
    small = Image.fromarray(imagegen.make_array("real", 16))  # small: 21 px or less
    images = [
        small,
        imagegen.image_bytes("real", 24),
        jpeg_bytes("real", 24, quality=30),
        jpeg_bytes("real", 24),
    ]
    verdicts = [(p.image_rule, p.verdict, p.record()["ai_above"]) for p in detector.predict(images)]
    assert verdicts == [
        ("small_image", "ai", 0.0),
        ("main", "real", 1.0),
        ("compressed_image", UNCERTAIN, 1.0),  # saved at q30: heavily compressed
        ("main", "real", 1.0),
    ]
    assert [p.record()["image_rule"] for p in detector.predict([small])] == ["small_image"]
    assert describe_rules(detector.metadata) == (
        "AI from 1.000, no AI signs below; images of 21 px or less on their shorter side: AI from 0.000, no AI "
        "signs below; JPEG files saved at quality 50 or less: AI above 1.000, unsure 0.000-1.000, no AI signs "
        "below 0.000"
    )
