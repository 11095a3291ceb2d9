"""The `realcheck` command line end to end: every subcommand at tiny size, and clear errors for bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import imagegen
import numpy as np
import pytest
from conftest import TINY, TINY_ANY_BACKBONE, TINY_BACKBONE
from PIL import Image

from realcheck.cli import main

# Trains models in the test process, which grows by gigabytes: scripts/test.sh runs these in a pytest of their own.
pytestmark = pytest.mark.trains

REQUIRED_EVALUATE_KEYS = {
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "n",
    "confusion_matrix",
}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["-q", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_train_writes_a_complete_artifact(trained_artifact):
    for name in (
        "model.keras",
        "metadata.json",
        "README.md",
        "config.json",
        "split.csv",
        "history.json",
        "evaluation.json",
        "skipped.json",
        "plots/confusion_matrix.png",
        "plots/roc.png",
    ):
        assert (trained_artifact / name).is_file(), name
    metadata = json.loads((trained_artifact / "metadata.json").read_text())
    assert metadata["backbone"] == TINY_BACKBONE
    assert metadata["labels"] == {"0": "real", "1": "ai"}
    assert metadata["input_size"] == 32
    low, high = metadata["uncertainty_band"]
    assert 0.0 <= low <= metadata["threshold"] <= high <= 1.0
    test = metadata["metrics"]["test"]  # measured at the rule the model was given
    assert [test["threshold"], test["uncertainty_band"]] == [
        metadata["threshold"],
        metadata["uncertainty_band"],
    ]
    assert metadata["training_data"]["real"] == 24 and metadata["training_data"]["ai"] == 24
    assert metadata["metrics"]["test"]["n"] == sum(metadata["metrics"]["test"]["confusion_matrix"][0]) + sum(
        metadata["metrics"]["test"]["confusion_matrix"][1]
    )
    assert "tensorflow" in json.dumps(metadata["library_versions"])
    assert metadata["seed"] == 42
    card = (trained_artifact / "README.md").read_text()
    assert metadata["version"] in card and "Confusion matrix" in card


def test_evaluate_json_on_a_deepguard_tree(capsys, trained_artifact, deepguard_dataset, tmp_path):
    status, out, _ = run_cli(
        capsys,
        "evaluate",
        "--model",
        str(trained_artifact),
        "--data",
        str(deepguard_dataset.parent),
        "--json",
        "--out",
        str(tmp_path / "eval"),
    )
    assert status == 0
    result = json.loads(out)
    assert result.keys() >= REQUIRED_EVALUATE_KEYS
    assert result["n"] == sum(map(sum, result["confusion_matrix"]))
    assert set(result["per_generator"]) == {"stable-diffusion", "dall-e-3", "imagen", "glide"}
    assert result["skipped"] == 1  # the "(1)" duplicate
    rows = (tmp_path / "eval" / "predictions.csv").read_text().splitlines()
    assert len(rows) == result["n"] + 1
    assert (tmp_path / "eval" / "plots" / "roc.png").is_file()


def test_evaluate_subset_uses_the_artifacts_split(capsys, trained_artifact, folder_dataset):
    status, out, _ = run_cli(
        capsys,
        "evaluate",
        "--model",
        str(trained_artifact),
        "--data",
        str(folder_dataset),
        "--subset",
        "test",
        "--json",
    )
    assert status == 0
    test_rows = [
        line for line in (trained_artifact / "split.csv").read_text().splitlines() if line.endswith(",test")
    ]
    assert json.loads(out)["n"] == len(test_rows)
    metadata = json.loads((trained_artifact / "metadata.json").read_text())
    assert json.loads(out)["accuracy"] == pytest.approx(metadata["metrics"]["test"]["accuracy"])


def test_evaluate_text_report(capsys, trained_artifact, folder_dataset):
    status, out, _ = run_cli(
        capsys, "evaluate", "--model", str(trained_artifact), "--data", str(folder_dataset)
    )
    assert status == 0
    assert "balanced accuracy" in out and "confusion matrix" in out


def run_cli_process(*args: str) -> subprocess.CompletedProcess:
    """The installed `realcheck` in its own process: exporters keep gigabytes the test session never gets back."""
    from serving import realcheck_command

    return subprocess.run(
        [*realcheck_command(), "-q", *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("fmt", ["onnx", "savedmodel"])
def test_export_matches_keras(trained_artifact, tmp_path, fmt):
    target = tmp_path / ("model.onnx" if fmt == "onnx" else "savedmodel")
    done = run_cli_process("export", "--model", str(trained_artifact), "--format", fmt, "--out", str(target))
    assert done.returncode == 0, done.stderr
    assert target.exists()
    assert "max difference from Keras" in done.stdout


def test_finetune_continues_from_an_artifact(capsys, trained_artifact, folder_dataset, tmp_path):
    out_dir = tmp_path / "finetuned"
    status, out, _ = run_cli(
        capsys,
        "finetune",
        "--model",
        str(trained_artifact),
        "--data",
        str(folder_dataset),
        "--out",
        str(out_dir),
        "--finetune-epochs",
        "1",
        "--batch-size",
        "16",
        "--patience",
        "0",
    )
    assert status == 0
    metadata = json.loads((out_dir / "metadata.json").read_text())
    assert (
        metadata["fine_tuned_from"]["version"]
        == json.loads((trained_artifact / "metadata.json").read_text())["version"]
    )
    # The original split is reused, so the test split cannot leak into fine-tuning.
    assert (out_dir / "split.csv").read_text() == (trained_artifact / "split.csv").read_text()
    assert "finetune" in json.loads((out_dir / "history.json").read_text())


def test_tune_saves_best_hyperparameters_and_resumes(capsys, folder_dataset, tmp_path):
    out_dir = tmp_path / "tune"

    def tune(trials: int) -> int:
        args = [
            "tune",
            "--data",
            str(folder_dataset),
            "--out",
            str(out_dir),
            "--trials",
            str(trials),
            "--search-epochs",
            "2",
        ]
        return run_cli(capsys, *args, *TINY)[0]

    assert tune(2) == 0
    best = json.loads((out_dir / "best_hyperparameters.json").read_text())
    assert best["trials"] == 2 and best["params"]["units"] in {64, 128, 256, 512}
    # Resuming with a larger budget runs only the missing trial and reuses the cached features.
    assert tune(3) == 0
    assert json.loads((out_dir / "best_hyperparameters.json").read_text())["trials"] == 3
    assert len(list(out_dir.glob("features-*.npz"))) == 1


def test_train_with_search_and_weights_file(capsys, folder_dataset, tmp_path):
    """--search needs pretrained weights: a local weights file stands in for ImageNet here."""
    import keras

    weights = tmp_path / "resnet50_notop.weights.h5"
    keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(
        weights
    )
    out_dir = tmp_path / "search"
    status, out, err = run_cli(
        capsys,
        "train",
        "--data",
        str(folder_dataset),
        "--out",
        str(out_dir),
        "--search",
        "--trials",
        "2",
        "--finetune-epochs",
        "1",
        "--training-size",
        "32",
        "--batch-size",
        "16",
        "--weights",
        str(weights),
        "--patience",
        "0",
    )
    assert status == 0, err
    metadata = json.loads((out_dir / "metadata.json").read_text())
    assert metadata["weights"] == "file"
    best = json.loads((out_dir / "tuning" / "best_hyperparameters.json").read_text())
    assert metadata["head"] == best["params"]
    history = json.loads((out_dir / "history.json").read_text())
    assert "search" in history and "finetune" in history


def test_compare_every_backbone(capsys, folder_dataset, tmp_path):
    out_dir = tmp_path / "compare"
    from realcheck.cli import build_parser
    from realcheck.model.settings import BACKBONES

    # By default every backbone is compared; two are trained here (each costs a minute on 2 cores).
    default = build_parser().parse_args(["compare", "--data", "d"]).backbones
    assert default.split(",") == list(BACKBONES)
    status, out, _ = run_cli(
        capsys,
        "compare",
        "--data",
        str(folder_dataset),
        "--out",
        str(out_dir),
        "--epochs",
        "1",
        "--backbones",
        "resnet50,efficientnet_lite0",
        *TINY_ANY_BACKBONE,
    )
    assert status == 0
    rows = json.loads((out_dir / "comparison.json").read_text())
    assert [r["backbone"] for r in rows] == ["resnet50", "efficientnet_lite0"]
    assert all(r["n_test"] == rows[0]["n_test"] for r in rows)
    splits = {(out_dir / r["backbone"] / "split.csv").read_text() for r in rows}
    assert len(splits) == 1  # the same split for every backbone
    assert "| resnet50 |" in (out_dir / "comparison.md").read_text()
    with Image.open(out_dir / "comparison.png") as chart:
        assert chart.size[0] > 100


# ----------------------------------------------------------------------------------------------- bad input


def test_missing_data_folder(capsys, tmp_path):
    status, _, err = run_cli(
        capsys, "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), *TINY
    )
    assert status == 2
    assert "data folder not found" in err and "Traceback" not in err


def test_empty_data_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    status, _, err = run_cli(
        capsys, "train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), *TINY
    )
    assert status == 2
    assert "no class folders" in err


def test_one_class_only(capsys, tmp_path):
    for index in range(3):
        imagegen.write_image(tmp_path / "data" / "real" / f"{index}.png", "real", seed=index)
    status, _, err = run_cli(
        capsys, "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "o"), *TINY
    )
    assert status == 2
    assert "only one class" in err and "no ai images" in err


def test_corrupt_files_are_skipped_and_listed(capsys, tmp_path, folder_dataset):
    data = tmp_path / "data"
    shutil.copytree(folder_dataset, data)
    (data / "real" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (data / "fake" / "notes.png").write_text("not an image")
    out_dir = tmp_path / "out"
    status, _, err = run_cli(
        capsys,
        "train",
        "--data",
        str(data),
        "--out",
        str(out_dir),
        "--epochs",
        "1",
        "--test-fraction",
        "0.2",
        *TINY,
    )
    assert status == 0, err
    skipped = json.loads((out_dir / "skipped.json").read_text())
    assert sorted(Path(s["path"]).name for s in skipped) == ["broken.jpg", "notes.png"]
    assert "broken.jpg" not in (out_dir / "split.csv").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backbone", "alexnet"], "invalid choice"),
        (["--epochs", "-1"], "must not be negative"),
        (["--batch-size", "zero"], "not a whole number"),
        (["--val-fraction", "1.5"], "must be in [0, 1)"),
    ],
)
def test_bad_flags_exit_2_with_a_message(capsys, tmp_path, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(tmp_path), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_weights_file(capsys, folder_dataset, tmp_path):
    status, _, err = run_cli(
        capsys,
        "train",
        "--data",
        str(folder_dataset),
        "--out",
        str(tmp_path / "o"),
        "--training-size",
        "32",
        "--weights",
        str(tmp_path / "missing.h5"),
    )
    assert status == 2
    assert "weights file not found" in err


def test_evaluate_missing_model(capsys, folder_dataset, tmp_path):
    status, _, err = run_cli(
        capsys, "evaluate", "--model", str(tmp_path / "none"), "--data", str(folder_dataset)
    )
    assert status == 2
    assert "model folder not found" in err


def test_export_unknown_format_is_refused(capsys, trained_artifact):
    with pytest.raises(SystemExit):
        main(["export", "--model", str(trained_artifact), "--format", "tflite"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["onnx", "savedmodel"])
def test_export_without_model_exports_the_bundled_one_into_the_current_folder(
    capsys, tmp_path, monkeypatch, fmt
):
    from realcheck.model.artifacts.artifact import bundled_model_dir, read_metadata

    calls = []

    def record(model_dir, fmt, out):  # the exporter itself is tested above; here, what it is given
        calls.append((Path(model_dir), fmt, out))
        return {"format": fmt, "path": str(out), "max_abs_diff": 0.0}

    monkeypatch.setattr("realcheck.model.artifacts.export.export_artifact", record)
    monkeypatch.chdir(tmp_path)
    status, out, _ = run_cli(capsys, "export", "--format", fmt)
    bundled = bundled_model_dir()
    name = read_metadata(bundled)["name"]
    expected = Path(f"{name}.onnx") if fmt == "onnx" else Path(f"{name}-savedmodel") / "1"
    assert status == 0 and calls == [(bundled, fmt, expected)]
    assert str(expected) in out


def test_console_script_runs(tmp_path):
    """The console script's entry point is main(), and `realcheck` in its own process reports a user error cleanly."""
    from importlib import import_module

    from serving import realcheck_command

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    module, function = re.search(r'^realcheck = "([\w.]+):(\w+)"$', pyproject, re.MULTILINE).groups()
    assert getattr(import_module(module), function) is main
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    version = subprocess.run(
        [*realcheck_command(), "--version"], capture_output=True, text=True, timeout=120, env=env
    )
    assert version.returncode == 0 and version.stdout.startswith("realcheck ")
    failing = subprocess.run(
        [*realcheck_command(), "evaluate", "--model", str(tmp_path), "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert failing.returncode == 2
    assert "is not a RealCheck artifact" in failing.stderr and "Traceback" not in failing.stderr


def test_a_command_that_loads_tensorflow_prints_only_its_own_lines(tiny_artifact, tmp_path):
    picture = tmp_path / "photo.png"
    picture.write_bytes(imagegen.image_bytes("real", 40, seed=5))
    # No TF_CPP_MIN_LOG_LEVEL from outside: the CLI itself must keep TensorFlow's start-up lines away.
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    from serving import realcheck_command

    done = subprocess.run(
        [
            *realcheck_command(),
            "check",
            str(picture),
            "--model",
            str(tiny_artifact),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "photo.png: " in done.stdout
    for noise in ("oneDNN", "absl::InitializeLog", "cpu_feature_guard"):
        assert noise not in done.stderr, done.stderr


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "request worker threads (default: 16)" in text
    assert "most open connections at once (default: 200)" in text
    assert "(default: None)" not in text


def test_train_on_crops_with_highpass_scores_a_larger_window(capsys, folder_dataset, tmp_path):
    """Crop mode is fully convolutional: trained on 32-px crops, the artifact scores a 48-px window."""
    augment = tmp_path / "augment.json"
    augment.write_text(
        json.dumps({"rotation": 0, "zoom": 0, "jpeg_probability": 0.9, "jpeg_quality": [30, 90]})
    )
    out = tmp_path / "crops"
    status, _, err = run_cli(
        capsys,
        "train",
        "--data",
        str(folder_dataset),
        "--out",
        str(out),
        "--epochs",
        "1",
        *TINY,
        "--input-mode",
        "crop",
        "--input-size",
        "48",
        "--input-filter",
        "highpass",
        "--augment-config",
        str(augment),
    )
    assert status == 0, err
    metadata = json.loads((out / "metadata.json").read_text())
    assert (metadata["input_size"], metadata["training_crop_size"]) == (48, 32)
    assert metadata["input_filter"] == "highpass" and metadata["input_mode"] == "crop"
    config = json.loads((out / "config.json").read_text())
    assert config["augment"]["jpeg_probability"] == 0.9 and config["augment"]["jpeg_quality"] == [30, 90]
    assert config["augment"]["flip"] is True  # keys the file leaves out keep their defaults

    from realcheck.model.artifacts.artifact import load_artifact

    model, _ = load_artifact(out)
    names = {layer.name for layer in model.layers}
    assert "highpass" in names and "resize" not in names
    # The same weights score any window: the 48-px one the artifact uses and a 64-px one.
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    assert np.isfinite(model.predict(pixels, verbose=0)).all()
    done = run_cli_process("export", "--model", str(out), "--format", "onnx")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rotaton": 0.1}, "unknown augmentation settings"),
        ([1, 2], "must hold a JSON object"),
        ({"jpeg_quality": 5}, "bad augmentation settings"),
    ],
)
def test_bad_augmentation_file(capsys, folder_dataset, tmp_path, settings, message):
    augment = tmp_path / "augment.json"
    augment.write_text(json.dumps(settings))
    status, _, err = run_cli(
        capsys,
        "train",
        "--data",
        str(folder_dataset),
        "--out",
        str(tmp_path / "o"),
        "--augment-config",
        str(augment),
    )
    assert status == 2
    assert message in err


def test_inference_size_needs_crop_mode(capsys, folder_dataset, tmp_path):
    status, _, err = run_cli(
        capsys, "train", "--data", str(folder_dataset), "--out", str(tmp_path / "o"), "--inference-size", "64"
    )
    assert status == 2
    assert "--input-size needs --input-mode crop" in err  # --inference-size is its older spelling


def test_small_images_fill_needs_crop_mode(capsys, folder_dataset, tmp_path):
    out = str(tmp_path / "o")
    status, _, err = run_cli(
        capsys, "train", "--data", str(folder_dataset), "--out", out, "--small-images", "mirror"
    )
    assert status == 2
    assert "--small-images needs --input-mode crop" in err


def test_evaluate_web_degraded_copies(capsys, trained_artifact, folder_dataset, tmp_path):
    results = {}
    for name, extra in (("clean", []), ("degraded", ["--degrade", "24:40"])):
        out = tmp_path / name
        status, _, err = run_cli(
            capsys,
            "evaluate",
            "--model",
            str(trained_artifact),
            "--data",
            str(folder_dataset),
            "--out",
            str(out),
            *extra,
        )
        assert status == 0, err
        evaluation = json.loads((out / "evaluation.json").read_text())
        scores = [row.split(",")[3] for row in (out / "predictions.csv").read_text().splitlines()[1:]]
        results[name] = (evaluation, scores)
    (clean, clean_scores), (degraded, degraded_scores) = results["clean"], results["degraded"]
    assert clean["data"]["degradation"] is None
    assert degraded["data"]["degradation"] == "longest side <= 24 px, JPEG quality 40"
    assert degraded["n"] == clean["n"] == 48
    # The copies are what the model saw: 48-px images shrunk to 24 px and recompressed score differently.
    assert sum(a != b for a, b in zip(clean_scores, degraded_scores)) > 24


def test_evaluate_bad_degradation_flag(capsys, trained_artifact, folder_dataset):
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["evaluate", "--model", str(trained_artifact), "--data", str(folder_dataset), "--degrade", "768"]
        )
    assert exit_info.value.code == 2
    assert "expected MAX_SIDE:QUALITY" in capsys.readouterr().err


# ------------------------------------------------------------------------- per source, one class, calibration


def test_evaluate_one_class_folder_with_label_reports_per_source(capsys, trained_artifact, tmp_path):
    for index, source in enumerate(["midjourney", "midjourney", "flux"]):
        imagegen.write_image(tmp_path / "mine" / source / f"{index}.png", "ai", seed=index)
    status, out, _ = run_cli(
        capsys,
        "evaluate",
        "--model",
        str(trained_artifact),
        "--data",
        str(tmp_path / "mine"),
        "--label",
        "ai",
    )
    assert status == 0, out
    assert "AI images caught (recall):" in out and "/3 = " in out
    assert "midjourney: n=2 AI caught" in out and "flux: n=1 AI caught" in out
    status, out, _ = run_cli(
        capsys,
        "evaluate",
        "--model",
        str(trained_artifact),
        "--data",
        str(tmp_path / "mine"),
        "--label",
        "real",
        "--json",
    )
    result = json.loads(out)
    assert status == 0 and result["n_real"] == 3 and result["n_ai"] == 0 and result["roc_auc"] is None
    assert set(result["per_generator"]) == {"midjourney", "flux"}


def test_evaluate_a_fake_folder_alone_and_without_model_flag(capsys, tmp_path):
    for index in range(2):
        imagegen.write_image(tmp_path / "data" / "fake" / f"{index}.png", "ai", seed=index)
    status, out, _ = run_cli(capsys, "evaluate", "--data", str(tmp_path / "data"), "--json")
    assert status == 0  # one class is fine for evaluation, and the bundled model is the default
    result = json.loads(out)
    assert result["n_ai"] == 2 and result["model"]["name"].startswith("realcheck-default")


def test_evaluate_folder_without_class_folders_asks_for_a_label(capsys, trained_artifact, tmp_path):
    imagegen.write_image(tmp_path / "loose" / "a.png", "ai")
    status, _, err = run_cli(
        capsys, "evaluate", "--model", str(trained_artifact), "--data", str(tmp_path / "loose")
    )
    assert status == 2 and "--label" in err and "Traceback" not in err


def test_train_split_by_source_calibrates_on_unseen_sources(capsys, tmp_path):
    data = tmp_path / "data"
    for source, label in [("a", "real"), ("b", "real"), ("c", "real"), ("x", "ai"), ("y", "ai"), ("z", "ai")]:
        folder = "real" if label == "real" else "fake"
        for index in range(8):
            imagegen.write_image(
                data / folder / source / f"{index}.png", label, size=40, seed=ord(source) * 10 + index
            )
    out_dir = tmp_path / "run"
    status, out, err = run_cli(
        capsys,
        "train",
        "--data",
        str(data),
        "--out",
        str(out_dir),
        "--epochs",
        "1",
        "--split-by",
        "source",
        "--val-fraction",
        "0.3",
        "--test-fraction",
        "0.3",
        "--max-real-called-ai",
        "0.1",
        *TINY,
    )
    assert status == 0, err
    rows = (out_dir / "split.csv").read_text().splitlines()[1:]
    split_of_source: dict[str, set] = {}
    for row in rows:
        path, _, _, _, split = row.split(",")
        split_of_source.setdefault(path.split("/")[1], set()).add(split)
    assert all(len(splits) == 1 for splits in split_of_source.values()), "a source straddles splits"
    assert {"train", "val", "test"} == set().union(*split_of_source.values())
    metadata = json.loads((out_dir / "metadata.json").read_text())
    calibration = metadata["calibration"]
    assert calibration["method"] == "platt" and calibration["fitted_on"] == "val"
    assert calibration["val_log_loss_after"] <= calibration["val_log_loss_before"] + 1e-9
    from realcheck.model.artifacts.artifact import load_artifact

    model, _ = load_artifact(out_dir)
    # A one-epoch model may rank validation no better than chance; Platt scaling then keeps its scores
    # (identity, no layer). Either way the saved model must be the calibration the metadata records.
    if (calibration["scale"], calibration["bias"]) == (1.0, 0.0):
        assert model.layers[-1].name != "calibration"
    else:
        assert model.layers[-1].name == "calibration"
        assert model.layers[-1].scale == pytest.approx(calibration["scale"])


@pytest.mark.parametrize("command", ["serve", "app"])
@pytest.mark.parametrize("port", ["70000", "-1"])
def test_an_impossible_port_is_refused(capsys, command, port):
    with pytest.raises(SystemExit) as stop:
        main([command, "--port", port])
    assert stop.value.code == 2
    assert "a port is 0-65535" in capsys.readouterr().err
