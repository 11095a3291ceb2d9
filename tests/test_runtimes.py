"""Runtimes: ONNX Runtime and TensorFlow agree within 1e-4; the ONNX export is cached by model content."""

from __future__ import annotations

import numpy as np
import pytest
from serving import varied_images

from realcheck.model.artifacts import artifact as model_artifact
from realcheck.model.artifacts.artifact import bundled_model_dir, read_metadata, resolve_model_dir
from realcheck.server import backends
from realcheck.server.config import ServerConfig
from realcheck.server.service import PredictionService, Upload


def test_onnx_and_tensorflow_give_the_same_scores(tiny_artifact, onnx_cache_dir):
    images = [Upload(data) for data in varied_images(6, size=50)]
    scores = {}
    for backend in ("onnx", "tensorflow"):
        config = ServerConfig(
            model_dir=tiny_artifact, backend=backend, cache_dir=onnx_cache_dir, result_cache_size=0
        )
        service = PredictionService(config).start()
        assert service.detector.runtime.name == {"onnx": "onnxruntime", "tensorflow": "tensorflow"}[backend]
        batched = [r.prediction.score for r in service.predict(images)]
        single = [service.predict([image])[0].prediction.score for image in images]
        service.stop()
        # Batching never changes a score (bit for bit on ONNX Runtime; float rounding on TensorFlow).
        np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)
        if backend == "onnx":
            assert batched == single
        scores[backend] = np.array(batched)
    np.testing.assert_allclose(scores["onnx"], scores["tensorflow"], atol=1e-4, rtol=0)


def test_auto_backend_is_onnx_without_a_gpu(monkeypatch):
    monkeypatch.setattr(backends, "gpu_available", lambda: False)
    assert backends.choose_backend("auto") == "onnx"
    monkeypatch.setattr(backends, "gpu_available", lambda: True)
    assert backends.choose_backend("auto") == "tensorflow"
    assert backends.choose_backend("onnx") == "onnx"


def test_onnx_export_is_cached_and_redone_when_the_model_changes(tmp_path, monkeypatch):
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "model.keras").write_bytes(b"model version 1")
    exports = []

    def fake_export(model_dir, out):
        exports.append(out)
        out.write_bytes(b"onnx of " + (artifact / "model.keras").read_bytes())
        out.with_name(out.name + ".export.json").write_text("{}")
        return {"max_abs_diff": 0.0}

    monkeypatch.setattr("realcheck.model.artifacts.export.export_onnx_in_child", fake_export)
    cache = tmp_path / "cache"
    first = backends.ensure_onnx_export(artifact, cache, "my model")
    assert backends.ensure_onnx_export(artifact, cache, "my model") == first
    assert len(exports) == 1
    (artifact / "model.keras").write_bytes(b"model version 2")  # retrained: same name, new content
    second = backends.ensure_onnx_export(artifact, cache, "my model")
    assert second != first and len(exports) == 2
    assert second.read_bytes() == b"onnx of model version 2"
    assert not first.exists(), "the stale export is removed"
    assert sorted(p.name for p in (cache / "onnx").iterdir()) == [second.name, second.name + ".export.json"]


def test_model_resolution(tiny_artifact, tmp_path, monkeypatch):
    from realcheck.model.errors import RealCheckError

    assert resolve_model_dir(tiny_artifact) == tiny_artifact
    bundled = bundled_model_dir()
    assert bundled is not None and resolve_model_dir(None) == bundled, "the package ships a default model"
    assert read_metadata(bundled)["input_size"] >= 32
    monkeypatch.setattr(model_artifact, "bundled_models_root", lambda: tmp_path / "no-models")
    with pytest.raises(RealCheckError, match="pass --model"):
        resolve_model_dir(None)
    with pytest.raises(RealCheckError, match="not found"):
        resolve_model_dir(tmp_path / "missing")
    assert read_metadata(tiny_artifact)["name"] == "realcheck-tiny"


def test_a_damaged_cached_export_is_replaced(tiny_artifact, onnx_cache_dir, tmp_path, monkeypatch):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(onnx_cache_dir, cache)
    (cached,) = (cache / "onnx").glob("*.onnx")
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 3])  # a copy cut short
    exports = []

    def export_again(model_dir, out):
        # Stands in for tf2onnx (gigabytes and a minute): the export the fixture made once, written anew.
        exports.append(out)
        out.write_bytes(good)
        return {"max_abs_diff": 0.0}

    monkeypatch.setattr("realcheck.model.artifacts.export.export_onnx_in_child", export_again)
    runtime = backends.load_runtime(tiny_artifact, read_metadata(tiny_artifact), "onnx", cache)
    assert len(exports) == 1 and runtime.path == cached and cached.read_bytes() == good
    assert runtime.scores(np.zeros((1, 32, 32, 3), dtype=np.float32)).shape == (1,)


def test_an_artifacts_own_onnx_export_is_used_only_when_it_matches(tiny_artifact, tmp_path, monkeypatch):
    import json
    import shutil

    artifact = tmp_path / "artifact"
    shutil.copytree(tiny_artifact, artifact)
    (artifact / "model.onnx").write_bytes(b"shipped")
    record = {"source_sha256": model_artifact.file_sha256(artifact / "model.keras")}
    (artifact / "model.onnx.export.json").write_text(json.dumps(record))
    monkeypatch.setattr(
        "realcheck.model.artifacts.export.export_onnx_in_child",
        lambda *a: pytest.fail("exported although shipped"),
    )
    assert backends.ensure_onnx_export(artifact, tmp_path / "cache", "m") == artifact / "model.onnx"
    (artifact / "model.onnx.export.json").write_text(json.dumps({"source_sha256": "0" * 64}))
    assert backends.shipped_onnx(artifact, record["source_sha256"]) is None  # made from another model
    # With the file's own digest in the record, a damaged copy is not served.
    record["onnx_sha256"] = model_artifact.file_sha256(artifact / "model.onnx")
    (artifact / "model.onnx.export.json").write_text(json.dumps(record))
    assert backends.shipped_onnx(artifact, record["source_sha256"]) == artifact / "model.onnx"
    (artifact / "model.onnx").write_bytes(b"shipped, then damaged")
    assert backends.shipped_onnx(artifact, record["source_sha256"]) is None


def test_the_export_runs_in_a_child_process_and_its_failure_says_why(tiny_artifact, onnx_cache_dir, tmp_path):
    import shutil

    from realcheck.model.errors import RealCheckError

    # The fixture exported through the child process; here the child fails and says why.
    assert list((onnx_cache_dir / "onnx").glob("*.onnx"))
    artifact = tmp_path / "artifact"
    shutil.copytree(tiny_artifact, artifact)
    (artifact / "model.keras").write_bytes(b"\x00" * 100)
    with pytest.raises(
        RealCheckError, match="ONNX export of .* failed: .*damaged: not a Keras model archive"
    ):
        backends.ensure_onnx_export(artifact, tmp_path / "cache", "m")
    assert not list((tmp_path / "cache" / "onnx").iterdir()), "nothing half-written is left"


def test_a_damaged_model_file_says_so(tiny_artifact, tmp_path):
    import shutil

    from realcheck.model.errors import ArtifactError

    artifact = tmp_path / "artifact"
    shutil.copytree(tiny_artifact, artifact)
    (artifact / "model.keras").write_bytes(b"\x00" * 100)
    with pytest.raises(ArtifactError, match="damaged: not a Keras model archive"):
        model_artifact.load_artifact(artifact)


def test_the_bundled_model_ships_its_checked_onnx_export_and_its_protocol():
    bundled = bundled_model_dir()
    metadata = read_metadata(bundled)
    # Serving the bundled model never exports in the serving process: its own export matches its weights.
    digest = model_artifact.file_sha256(bundled / "model.keras")
    assert backends.shipped_onnx(bundled, digest) == bundled / "model.onnx"
    assert metadata["calibration"]["method"] == "platt"
    low, high = metadata["uncertainty_band"]
    assert low < high, "the band has width: `uncertain` can happen"
    assert metadata["threshold"] == high, "per-source operating point: `ai` only above the band"
    measured = metadata["operating_point"]["measured"]
    assert "cross-collection" in measured["protocol"]
    assert {"ai_caught", "real_called_ai", "uncertain"} <= set(measured["clean"])
    protocol = metadata["cross_collection"]
    assert {"A->B", "B->A"} <= set(protocol["recipes"][protocol["bundled_recipe"]])
    assert "Cross-collection results" in (bundled / "README.md").read_text(encoding="utf-8")
