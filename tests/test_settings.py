"""Settings have one owner: the dataclasses in model.settings and server.config make every flag, default and help."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import fields

import pytest

from realcheck.cli import build_parser, main
from realcheck.model.flags import add_flags, flag_values
from realcheck.model.settings import TrainConfig
from realcheck.server.config import MIB, ServerConfig


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize("module", ["realcheck.model.settings", "realcheck.model.flags", "realcheck.cli"])
def test_settings_and_the_command_line_import_no_heavy_library(module):
    # `realcheck --help` and every command's start must not wait for TensorFlow, NumPy or Pillow.
    code = (
        f"import sys, {module}; print(sorted(m for m in ('tensorflow', 'numpy', 'PIL') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


def test_train_flags_default_to_the_dataclass_defaults():
    values = flag_values(parse("train", "--data", "d"), TrainConfig)
    defaults = TrainConfig(data="d", out="o")
    for name, value in values.items():
        if name not in {"data", "out"}:
            assert value == getattr(defaults, name), name


def test_serve_flags_default_to_the_dataclass_defaults(monkeypatch):
    monkeypatch.delenv("REALCHECK_API_KEY", raising=False)
    values = flag_values(parse("serve"), ServerConfig)
    defaults = ServerConfig()
    assert set(values) >= {"port", "threads", "max_request_bytes", "cors_origins", "result_cache_size"}
    for name, value in values.items():
        assert value == getattr(defaults, name), name


def test_serve_flags_reach_the_config(monkeypatch):
    monkeypatch.setenv("REALCHECK_API_KEY", "from-env")
    args = parse(
        "serve", "--max-request-mb", "2.5", "--cache-size", "7", "--cors-origin", "https://a.org",
        "--cors-origin", "https://b.org", "--max-wait-ms", "0",
    )  # fmt: skip
    config = ServerConfig(**flag_values(args, ServerConfig))
    assert config.max_request_bytes == int(2.5 * MIB) and config.result_cache_size == 7
    assert config.cors_origins == ["https://a.org", "https://b.org"] and config.max_wait_ms == 0
    assert config.api_key == "from-env"


def test_help_text_comes_from_the_field(capsys):
    help_of = {f.name: f.metadata["flag"].help for f in fields(TrainConfig) if "flag" in f.metadata}
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert " ".join(help_of["max_uncertain"].split()) + " (default: 0.2)" in text
    assert "--training-size TRAINING_SIZE, --image-size TRAINING_SIZE" in text
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "largest request body, in MiB (default: 64)" in " ".join(capsys.readouterr().out.split())


def test_old_size_flags_still_work():
    args = parse(
        "train", "--data", "d", "--input-mode", "crop", "--image-size", "64", "--inference-size", "96"
    )
    config = TrainConfig(**flag_values(args, TrainConfig))
    assert (config.training_size, config.input_size, config.inference_spec.size) == (64, 96, 96)
    assert config.training_spec.size == 64


@pytest.mark.parametrize(
    ("flag", "reason"),
    [
        (["--backbone", "vgg16"], "keeps the network of the artifact"),
        (["--training-size", "64"], "keeps the network of the artifact"),
        (["--image-size", "64"], "keeps the network of the artifact"),  # its older spelling too
        (["--weights", "none"], "keeps the network of the artifact"),
        (["--head-params", "best.json"], "keeps the network of the artifact"),
        (["--epochs", "3"], "use --finetune-epochs"),
        (["--learning-rate", "0.1"], "--finetune-learning-rate"),
        (["--val-fraction", "0.2"], "reuses the artifact's split.csv"),
        (["--mixed-precision", "on"], "artifact's precision"),
        (["--search"], "keeps the head of the artifact"),
        (["--trials", "3"], "keeps the head of the artifact"),
        (["--no-finetune"], "fine-tuning phase only"),
    ],
)
def test_finetune_refuses_what_it_would_ignore(capsys, flag, reason):
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", "--model", "m", "--data", "d", *flag])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag[0]}: " in err and reason in err


@pytest.mark.parametrize(
    ("command", "flag", "reason"),
    [
        ("tune", ["--epochs", "3"], "their epochs are --search-epochs"),
        ("tune", ["--learning-rate", "0.1"], "the learning rate is searched"),
        ("tune", ["--finetune-epochs", "2"], "no augmentation, fine-tuning"),
        ("tune", ["--no-augment"], "no augmentation"),
        ("tune", ["--augment-config", "a.json"], "no augmentation"),
        ("tune", ["--head-params", "best.json"], "fits heads"),
        ("tune", ["--max-uncertain", "0.1"], "decision rule"),
        ("tune", ["--cache", "none"], "fits heads"),
        ("tune", ["--input-size", "64"], "not a model"),
        ("tune", ["--version", "1"], "not a model"),
        ("tune", ["--distribute", "mirrored"], "default device"),
        ("tune", ["--mixed-precision", "on"], "float32"),
        ("compare", ["--backbone", "vgg16"], "each backbone in --backbones"),
        ("compare", ["--unfreeze-from", "block5"], "no fine-tuning phase"),
        ("tune", ["--search"], "always searches"),
        ("tune", ["--no-finetune"], "fine-tunes nothing"),
        ("compare", ["--trials", "3"], "each backbone in --backbones"),
        ("compare", ["--no-finetune"], "no fine-tuning phase"),
    ],
)
def test_tune_and_compare_refuse_what_they_would_ignore(capsys, command, flag, reason):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--data", "d", *flag])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag[0]}: " in err and reason in err


def test_finetune_help_lists_only_what_it_honours(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = capsys.readouterr().out
    assert "--finetune-epochs" in text and "--unfreeze-from" in text
    for refused in ("--backbone", "--training-size", "--epochs ", "--learning-rate ", "--head-params"):
        assert refused not in text, refused


def test_every_flag_a_command_offers_is_a_setting_it_uses():
    """finetune's parsed arguments hold no TrainConfig setting that finetune would overwrite."""
    args = parse("finetune", "--model", "m", "--data", "d")
    assert not {
        "backbone",
        "training_size",
        "input_size",
        "input_mode",
        "small_images",
        "input_filter",
        "weights",
        "epochs",
    } & set(vars(args))


def test_add_flags_only_and_skip():
    parser = argparse.ArgumentParser()
    add_flags(parser, ServerConfig, only=("port", "host"), skip=("host",))
    assert flag_values(parser.parse_args(["--port", "9"]), ServerConfig) == {"port": 9}


@pytest.mark.parametrize(
    ("config", "values", "message"),
    [
        (TrainConfig, {"batch_size": 0}, "--batch-size: must be at least 1, got 0"),
        (TrainConfig, {"l2sp": -0.1}, "--l2sp: must not be negative"),
        (TrainConfig, {"max_real_called_ai": 1.0}, "--max-real-called-ai: must be in [0, 1)"),
        (ServerConfig, {"max_wait_ms": -1.0}, "--max-wait-ms: must not be negative"),
        (ServerConfig, {"max_request_bytes": 0}, "--max-request-mb: must be at least 1 byte"),
        (ServerConfig, {"port": 70000}, "--port: a port is 0-65535"),
        (ServerConfig, {"backend": "tpu"}, "--backend must be one of"),
    ],
)
def test_a_bound_declared_with_its_flag_holds_for_values_set_in_python(config, values, message):
    from realcheck.model.errors import RealCheckError

    required = {"data": "d", "out": "o"} if config is TrainConfig else {}
    with pytest.raises(RealCheckError) as refused:
        config(**required, **values)
    assert message in str(refused.value)


@pytest.mark.parametrize(("flag", "value"), [("--l2sp", "-0.1"), ("--batch-size", "0")])
def test_the_same_bound_refuses_the_flag(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", "d", flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}: must" in capsys.readouterr().err


def test_config_checks_choices_set_in_python():
    with pytest.raises(Exception, match="--split-by must be one of group, source"):
        TrainConfig(data="d", out="o", split_by="random")


@pytest.mark.parametrize(
    ("tf_config", "reason"),
    [
        (None, "needs TF_CONFIG in the environment of every worker"),
        ("{not json", "does not name a cluster and this task's place in it"),
        (
            '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}',
            "this task's place",
        ),
        (
            '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "chief", "index": 0}}',
            "this task's place",
        ),
    ],
)
def test_multiworker_training_without_a_usable_tf_config_is_refused_before_any_data_is_read(
    capsys, monkeypatch, tmp_path, tf_config, reason
):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    status = main(["train", "--data", str(tmp_path / "nowhere"), "--distribute", "multiworker"])
    assert status != 0
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err and "nowhere" not in err


@pytest.mark.parametrize(
    ("command", "flags", "reason"),
    [
        ("train", ["--search"], "--search and --adapt-until run on one machine"),
        (
            "train",
            ["--adapt-until", "block5", "--input-mode", "crop"],
            "--search and --adapt-until run on one",
        ),
        ("compare", ["--backbones", "resnet50"], "run `realcheck train --distribute multiworker` for each"),
    ],
)
def test_multiworker_training_refuses_the_flows_that_run_on_one_machine(
    capsys, tmp_path, command, flags, reason
):
    status = main([command, "--data", str(tmp_path / "nowhere"), "--distribute", "multiworker", *flags])
    assert status != 0
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err
