"""The network: a backbone (ResNet-50, VGG-16, EfficientNetB0 or EfficientNet-Lite0/2) under the study's head.

The model takes raw RGB 0..255 of any size; resizing (in `resize` mode), the backbone's own preprocessing
and an optional fixed input filter are layers of the graph, so every runtime exported from it (ONNX,
SavedModel) needs nothing but pixels. In `crop` mode the network is fully convolutional: it trains on small
crops at native resolution and can score a larger window of the same image.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers, ops

from realcheck.model.errors import RealCheckError, WeightsUnavailableError
from realcheck.model.settings import INPUT_FILTERS, LITE, POOLINGS, HeadParams, backbone_spec


@keras.saving.register_keras_serializable(package="realcheck")
class BackbonePreprocessing(layers.Layer):
    """Raw RGB 0..255 -> what the backbone was trained on (inside the graph, exported with it)."""

    _CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

    def __init__(self, mode: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1) - ops.convert_to_tensor(self._CAFFE_MEAN_BGR, dtype=self.compute_dtype)
        elif self.mode == "symmetric":
            x = (x - 127.0) / 128.0
        return x

    def get_config(self):
        return super().get_config() | {"mode": self.mode}


@keras.saving.register_keras_serializable(package="realcheck")
class HighPassResidual(layers.Layer):
    """The image minus its 3x3 box blur: keeps the pixel-level traces generators leave, drops the scene.

    A fixed filter, so a network trained from scratch on little data need not discover it first.
    """

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        return x - ops.average_pool(x, pool_size=3, strides=1, padding="same")


@keras.saving.register_keras_serializable(package="realcheck")
class Calibration(layers.Layer):
    """P(AI) -> sigmoid(scale * logit(P) + bias): Platt scaling fitted on validation data.

    Part of the graph, so every runtime exported from the model gives the same calibrated score.
    """

    def __init__(self, scale: float = 1.0, bias: float = 0.0, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.bias = float(bias)

    def call(self, inputs):
        p = ops.clip(ops.cast(inputs, "float32"), 1e-7, 1.0 - 1e-7)
        return ops.sigmoid(self.scale * (ops.log(p) - ops.log(1.0 - p)) + self.bias)

    def get_config(self):
        return super().get_config() | {"scale": self.scale, "bias": self.bias}


@keras.saving.register_keras_serializable(package="realcheck")
class StagePooling(layers.Layer):
    """A stage's feature map -> per channel its mean, standard deviation and maximum over the window: how
    much, how unevenly and how strongly at its peak a trace fires, wherever in the image it is."""

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        return ops.concatenate(
            [ops.mean(x, axis=(1, 2)), ops.std(x, axis=(1, 2)), ops.max(x, axis=(1, 2))], axis=-1
        )


def pooled_stages(base: keras.Model, backbone: str, pixels, prefix: str = ""):
    """Every stage of an EfficientNet-Lite backbone pooled by StagePooling and put side by side.

    Intermediate stages carry more of what transfers to unseen generators than the top layer does (RINE,
    and the cross-collection protocol here); `backbone` names the stages (`stage_ends`). `prefix` starts the
    names of the pooling layers, so several backbones can sit side by side in one model.
    """
    from realcheck.model.networks.efficientnet_lite import stage_ends

    ends = [base.get_layer(layer).output for layer in stage_ends(backbone)]
    stages = keras.Model(base.input, ends, name=f"{base.name}_stages")(pixels, training=False)
    return layers.Concatenate(name=f"{prefix}pool")(
        [StagePooling(name=f"{prefix}stage{index}_pool")(stage) for index, stage in enumerate(stages)]
    )


def with_calibration(model: keras.Model, scale: float = 1.0, bias: float = 0.0) -> keras.Model:
    """The detector with its output calibrated by (scale, bias), replacing any earlier calibration.

    scale 1, bias 0 gives the uncalibrated model back (no calibration layer at all).
    """
    output = model.layers[-1].input if isinstance(model.layers[-1], Calibration) else model.output
    if scale == 1.0 and bias == 0.0:
        return model if output is model.output else keras.Model(model.input, output, name=model.name)
    return keras.Model(model.input, Calibration(scale, bias, name="calibration")(output), name=model.name)


def build_head(feature_dim: int, params: HeadParams) -> keras.Model:
    """The head as its own small model (features -> P(AI)), shared by training and the head search."""
    regularizer = keras.regularizers.L2(params.l2) if params.l2 > 0 else None
    features = keras.Input((feature_dim,), name="features")
    x = features
    if params.dropout > 0:
        x = layers.Dropout(params.dropout, name="head_dropout")(x)
    if params.units:  # 0: a linear head (the probe's logistic regression)
        x = layers.Dense(params.units, activation="relu", kernel_regularizer=regularizer, name="head_dense")(
            x
        )
    if params.extra_layer and params.units:
        x = layers.Dense(
            max(params.units // 2, 8), activation="relu", kernel_regularizer=regularizer, name="head_dense_2"
        )(x)
    # float32 output even under mixed precision, so scores are comparable across runtimes.
    score = layers.Dense(1, activation="sigmoid", dtype="float32", name="score")(x)
    return keras.Model(features, score, name="head")


def build_backbone(name: str, size: int | None, weights: str | None) -> keras.Model:
    """The backbone without its top, with `weights` "imagenet", "none" or a path to a weights file.

    `size` None builds a backbone for any input size (fully convolutional).

    ImageNet weights that cannot be downloaded raise WeightsUnavailableError within seconds with a message
    that says how to pass a local file or train from scratch.
    """
    spec = backbone_spec(name)
    if spec.constructor == LITE:
        from realcheck.model.networks.efficientnet_lite import build_efficientnet_lite

        return build_efficientnet_lite(spec.name, (size, size, 3), resolve_weights(weights, ".pth"))
    constructor = getattr(keras.applications, spec.constructor)
    weights_arg = resolve_weights(weights)
    try:
        return constructor(include_top=False, weights=weights_arg, input_shape=(size, size, 3))
    except WeightsUnavailableError:
        raise
    except Exception as error:  # Keras raises a bare Exception when a download fails.
        if weights_arg == "imagenet" and "URL fetch failure" in str(error):
            raise WeightsUnavailableError(
                f"could not download ImageNet weights for {spec.name} (no network?). On a machine with "
                f'internet access, `python -c "import keras; keras.applications.{spec.constructor}'
                f'(include_top=False)"` saves {spec.weights_file} under ~/.keras/models/; copy that file '
                f"here and pass --weights /path/to/{spec.weights_file}, or pass --weights none to train "
                f"from scratch."
            ) from error
        if weights_arg not in {None, "imagenet"}:
            raise WeightsUnavailableError(
                f"cannot load weights file {weights_arg} into {spec.name} without its top: {error}"
            ) from error
        raise


def resolve_weights(weights: str | None, suffix: str = ".h5") -> str | None:
    """Map the CLI's --weights value to what the backbone builder accepts (files must end in `suffix`)."""
    if weights is None or str(weights).lower() in {"none", "", "random", "scratch"}:
        return None
    if str(weights).lower() == "imagenet":
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"weights file not found: {path} (use imagenet, none or a path to a {suffix} file)"
        )
    if not path.name.endswith(suffix):
        kind = "Keras .h5 weights" if suffix == ".h5" else f"{suffix} weights"
        raise WeightsUnavailableError(f"weights file for this backbone must be a {kind} file: {path}")
    return str(path)


def build_model(
    backbone: str = "resnet50",
    size: int = 224,
    weights: str | None = "imagenet",
    head: HeadParams | None = None,
    train_backbone: bool = False,
    input_mode: str = "resize",
    input_filter: str = "none",
    pooling: str = "average",
) -> keras.Model:
    """The full detector: raw RGB of any size -> resize -> backbone preprocessing -> backbone -> head.

    `size` is the side the network is built and trained at (`TrainConfig.training_size`). With `train_backbone` False the backbone is frozen and runs BatchNorm in inference mode (transfer
    learning and fine-tuning); True trains everything with BatchNorm in training mode (from scratch).
    In `crop` mode there is no resize layer: the network takes crops of any size at native resolution.
    `input_filter` "highpass" feeds the backbone the image's high-pass residual instead of the image.
    `pooling` "average" pools the backbone's last layer; "stages" pools every stage (`pooled_stages`, frozen
    EfficientNet-Lite backbones).
    """
    spec = backbone_spec(backbone)
    if pooling not in POOLINGS or (pooling == "stages" and (spec.constructor != LITE or train_backbone)):
        raise RealCheckError(
            f"pooling {pooling!r} needs one of {POOLINGS} (stages: a frozen EfficientNet-Lite)"
        )
    if input_filter not in INPUT_FILTERS:
        raise RealCheckError(
            f"unknown input filter {input_filter!r}; choose one of {', '.join(INPUT_FILTERS)}"
        )
    fully_convolutional = input_mode == "crop"
    base = build_backbone(spec.name, None if fully_convolutional else size, weights)
    base.trainable = train_backbone
    image = keras.Input((None, None, 3), name="image")
    x = image
    if not fully_convolutional:
        x = layers.Resizing(size, size, interpolation="bilinear", name="resize")(x)
    x = BackbonePreprocessing(spec.preprocessing, name="backbone_preprocessing")(x)
    if input_filter == "highpass":
        x = HighPassResidual(name="highpass")(x)
    if pooling == "stages":
        x = pooled_stages(base, spec.name, x)
    else:
        x = base(x) if train_backbone else base(x, training=False)
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    score = build_head(int(x.shape[-1]), head or HeadParams())(x)
    return keras.Model(image, score, name=f"realcheck_{spec.name}")


def backbone_of(model: keras.Model) -> keras.Model:
    """The backbone sub-model inside a detector built by build_model."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.name != "head":
            return layer
    raise RealCheckError("model has no backbone sub-model: was it built by RealCheck?")


def feature_extractor(model: keras.Model) -> keras.Model:
    """Raw image -> pooled backbone features (the head's input), sharing the detector's layers."""
    return keras.Model(model.input, model.get_layer("pool").output, name="features")


def unfreeze_top(model: keras.Model, backbone: str, from_layer: str | None = None) -> int:
    """Make the backbone trainable from `from_layer` (default: its last stage) upwards; BatchNorm stays frozen.

    Returns the number of trainable backbone layers.
    """
    base = backbone_of(model)
    start_name = from_layer or backbone_spec(backbone).top_stage
    names = [layer.name for layer in base.layers]
    if start_name not in names:
        raise RealCheckError(f"layer {start_name!r} not in the {backbone} backbone")
    start = names.index(start_name)
    base.trainable = True
    count = 0
    for index, layer in enumerate(base.layers):
        trainable = index >= start and not isinstance(layer, layers.BatchNormalization)
        layer.trainable = trainable
        count += int(trainable and bool(layer.weights))
    return count
