"""Run configuration: CLI flags -> TrainConfig -> config.json in the run folder -> read back by later steps."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from model.architecture import INPUT_FILTERS, HeadParams, backbone_spec
from model.errors import RealCheckError
from model.imaging import InputSpec
from model.pipeline import AugmentConfig

SPLIT_BY = ("group", "source")


@dataclass
class TrainConfig:
    """Everything that decides how a model is trained; saved with the artifact it produces."""

    data: str
    out: str
    backbone: str = "resnet50"
    weights: str = "imagenet"
    image_size: int = 224
    input_mode: str = "resize"
    # crop mode only: the window the finished model scores (default image_size, the training crop).
    inference_size: int | None = None
    input_filter: str = "none"
    batch_size: int = 32
    epochs: int = 10
    learning_rate: float = 1e-3
    finetune: bool = True
    finetune_epochs: int = 5
    finetune_learning_rate: float = 1e-5
    unfreeze_from: str | None = None
    search: bool = False
    search_trials: int = 10
    search_epochs: int = 15
    patience: int = 3
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split: str | None = None
    # "group": random, pair-aware; "source": whole sources (generators, camera collections) held out.
    split_by: str = "group"
    # The uncertainty band: at most this share of validation images inside it, and its upper edge raised
    # (within that share) until at most max_real_called_ai of validation real photographs score above it.
    max_uncertain: float = 0.2
    max_real_called_ai: float | None = None
    limit: int | None = None
    seed: int = 42
    cache: str | None = "memory"
    distribute: str = "auto"
    mixed_precision: str = "auto"
    name: str | None = None
    version: str | None = None
    head: HeadParams = field(default_factory=HeadParams)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        self.backbone = backbone_spec(self.backbone).name
        try:
            InputSpec(self.image_size, self.input_mode)
        except ValueError as error:
            raise RealCheckError(str(error)) from None
        if self.input_filter not in INPUT_FILTERS:
            raise RealCheckError(
                f"--input-filter must be one of {', '.join(INPUT_FILTERS)}, got {self.input_filter!r}"
            )
        if self.inference_size is not None:
            if self.input_mode != "crop":
                raise RealCheckError(
                    "--inference-size needs --input-mode crop (resize mode scores image-size)"
                )
            if self.inference_size < self.image_size:
                raise RealCheckError(
                    f"--inference-size ({self.inference_size}) must be at least --image-size ({self.image_size})"
                )
        positive = {"batch_size": self.batch_size, "search_trials": self.search_trials}
        non_negative = {
            "epochs": self.epochs,
            "finetune_epochs": self.finetune_epochs,
            "patience": self.patience,
        }
        for key, value in positive.items():
            if value < 1:
                raise RealCheckError(f"{key.replace('_', '-')} must be at least 1, got {value}")
        for key, value in non_negative.items():
            if value < 0:
                raise RealCheckError(f"{key.replace('_', '-')} must not be negative, got {value}")
        if self.learning_rate <= 0 or self.finetune_learning_rate <= 0:
            raise RealCheckError("learning rates must be positive")
        if self.distribute not in {"auto", "none", "mirrored", "multiworker"}:
            raise RealCheckError(
                f"--distribute must be auto, none, mirrored or multiworker, got {self.distribute!r}"
            )
        if self.split_by not in SPLIT_BY:
            raise RealCheckError(f"--split-by must be one of {', '.join(SPLIT_BY)}, got {self.split_by!r}")
        if not 0 <= self.max_uncertain < 1:
            raise RealCheckError(f"--max-uncertain must be in [0, 1), got {self.max_uncertain}")
        if self.max_real_called_ai is not None and not 0 <= self.max_real_called_ai < 1:
            raise RealCheckError(f"--max-real-called-ai must be in [0, 1), got {self.max_real_called_ai}")
        if self.mixed_precision not in {"auto", "on", "off"}:
            raise RealCheckError(f"--mixed-precision must be auto, on or off, got {self.mixed_precision!r}")

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.image_size, self.input_mode)

    @property
    def inference_spec(self) -> InputSpec:
        """How the finished model reads an image: the training input, or a larger crop window."""
        return InputSpec(self.inference_size or self.image_size, self.input_mode)

    @property
    def from_scratch(self) -> bool:
        """No pretrained weights: the whole network trains, and there is nothing to fine-tune."""
        return str(self.weights).lower() in {"none", "", "random", "scratch"}

    def to_dict(self) -> dict:
        data = asdict(self)
        data["head"] = self.head.to_dict()
        data["augment"] = self.augment.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["head"] = HeadParams.from_dict(values.get("head", {}))
        values["augment"] = AugmentConfig.from_dict(values.get("augment", {}))
        return cls(**values)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
