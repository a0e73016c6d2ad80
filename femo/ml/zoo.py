"""The model zoo: Keras 2 networks for face crops, each a function of input shape and classes.

Every network takes crops as stored in ``femo.faces`` (``crop_size`` x ``crop_size`` grayscale,
pixel values 0-255, shape ``(h, w, 1)``) and rescales them itself, so a saved model carries its
preprocessing: whoever predicts feeds the same pixels the trainer read. The last layer is a
float32 softmax over the classes whatever the compute policy (``mixed_bfloat16`` computes the
rest in bfloat16, about twice as fast on CPUs with AVX512_BF16; see BENCHMARKS.md).

| name | what | parameters (48x48x1, 7 classes) |
|---|---|---|
| ``dense`` | the original project's baseline: an MLP over the pixels | 1.3 M |
| ``cnn_seed`` | the original project's final CNN (conv 64/128/512/512, dense 256/512) | 4.5 M |
| ``compact`` | VGG-style, 32-64-128-256 filters, two 3x3 convs a stage: for CPU budgets | 1.8 M |
| ``compact_wide`` | ``compact`` with 160 and 320 filters in its last two stages | 2.5 M |
| ``vgg`` | Khaireddin & Chen (2021)'s layout, 64-512 filters | 9.4 M |
| ``mobilenetv2`` | transfer learning: ImageNet MobileNetV2 from a local weights file | 2.3 M |
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from femo.platform.errors import FemoError

if TYPE_CHECKING:
    import tensorflow as tf

#: Shape of one crop as the zoo's networks take it.
InputShape = tuple[int, int, int]


class UnknownModelError(FemoError):
    """A model name the zoo does not hold."""


def _keras() -> Any:
    """tf.keras, imported on first use (TensorFlow takes seconds to import)."""
    import tensorflow as tf

    return tf.keras


def _head(x: tf.Tensor, num_classes: int) -> tf.Tensor:
    """The classifier: a float32 softmax over ``num_classes``, whatever the compute policy."""
    layers = _keras().layers
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)


def _inputs(input_shape: InputShape) -> tuple[tf.Tensor, tf.Tensor]:
    """The input layer and its pixels rescaled to [0, 1]."""
    layers = _keras().layers
    inputs = layers.Input(shape=input_shape, name="pixels")
    return inputs, layers.Rescaling(1.0 / 255, name="rescale")(inputs)


def dense(input_shape: InputShape, num_classes: int) -> tf.keras.Model:
    """The original project's dense baseline: flattened pixels, two hidden layers of 512 and
    256 with batch norm and dropout."""
    layers = _keras().layers
    inputs, x = _inputs(input_shape)
    x = layers.Flatten()(x)
    for units in (512, 256):
        x = layers.Dense(units, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Dropout(0.4)(x)
    return _keras().Model(inputs, _head(x, num_classes), name="dense")


def _conv_bn(x: tf.Tensor, filters: int, kernel: int = 3) -> tf.Tensor:
    """A same-padded convolution, batch norm, ReLU."""
    layers = _keras().layers
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _dense_bn(x: tf.Tensor, units: int, dropout: float) -> tf.Tensor:
    """A dense layer, batch norm, ReLU, dropout."""
    layers = _keras().layers
    x = layers.Dense(units, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    return layers.Dropout(dropout)(x)


def cnn_seed(input_shape: InputShape, num_classes: int) -> tf.keras.Model:
    """The original project's final CNN (61.0 % on the FER-2013 test images after 124
    epochs): four conv blocks of 64 (3x3), 128 (5x5), 512 and 512 (3x3), each with batch norm,
    2x2 max pooling and dropout 0.25, then dense 256 and 512."""
    layers = _keras().layers
    inputs, x = _inputs(input_shape)
    for filters, kernel in ((64, 3), (128, 5), (512, 3), (512, 3)):
        x = _conv_bn(x, filters, kernel)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    for units in (256, 512):
        x = _dense_bn(x, units, 0.25)
    return _keras().Model(inputs, _head(x, num_classes), name="cnn_seed")


def _vgg_body(
    input_shape: InputShape, stages: tuple[int, ...], dropout: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Stages of two 3x3 conv-BN-ReLU and a 2x2 max pool; the inputs and the last stage."""
    layers = _keras().layers
    inputs, x = _inputs(input_shape)
    for filters in stages:
        x = _conv_bn(x, filters)
        x = _conv_bn(x, filters)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout)(x)
    return inputs, x


def compact(input_shape: InputShape, num_classes: int) -> tf.keras.Model:
    """A VGG-style network for CPU budgets: stages of 32, 64, 128 and 256 filters, then global
    average pooling and dense 256. About 1.8 M parameters, a quarter of ``vgg``'s time."""
    layers = _keras().layers
    inputs, x = _vgg_body(input_shape, (32, 64, 128, 256), 0.2)
    x = layers.Flatten()(x)
    x = _dense_bn(x, 256, 0.5)
    return _keras().Model(inputs, _head(x, num_classes), name="compact")


def compact_wide(input_shape: InputShape, num_classes: int) -> tf.keras.Model:
    """``compact`` with more capacity where it is cheap: 160 and 320 filters in the last two
    stages (which run on 12x12 and 6x6 maps), about 2.5 M parameters and 1.5 times the time.
    The widest such network whose saved file stays under the shipped-model limit (10 MiB)."""
    layers = _keras().layers
    inputs, x = _vgg_body(input_shape, (32, 64, 160, 320), 0.2)
    x = layers.Flatten()(x)
    x = _dense_bn(x, 256, 0.5)
    return _keras().Model(inputs, _head(x, num_classes), name="compact_wide")


def vgg(input_shape: InputShape, num_classes: int) -> tf.keras.Model:
    """Khaireddin & Chen (2021)'s VGG variant (73.28 % on FER-2013's public test half after
    300 epochs on a GPU): stages of 64, 128, 256 and 512 filters, then dense 1024."""
    inputs, x = _vgg_body(input_shape, (64, 128, 256, 512), 0.25)
    x = _keras().layers.Flatten()(x)
    x = _dense_bn(x, 1024, 0.5)
    return _keras().Model(inputs, _head(x, num_classes), name="vgg")


def mobilenetv2(
    input_shape: InputShape, num_classes: int, weights: str | Path | None = None
) -> tf.keras.Model:
    """Transfer learning: MobileNetV2 on the crop upscaled to 96x96 and repeated to three
    channels, then global average pooling and dropout. ``weights`` is a local file of ImageNet
    weights without the top (Keras' ``..._no_top.h5`` for alpha 1.0 at 96 px: nothing can be
    downloaded here); without one the network starts from random weights."""
    keras = _keras()
    layers = keras.layers
    if weights is not None and not Path(weights).is_file():
        raise FemoError(f"mobilenetv2: no weights file at {weights}")
    inputs = layers.Input(shape=input_shape, name="pixels")
    x = layers.Resizing(96, 96, name="upscale")(inputs)
    if input_shape[-1] == 1:
        x = layers.Concatenate(name="to_rgb")([x, x, x])
    # MobileNetV2 takes pixels in [-1, 1].
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)
    base = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), include_top=False, weights=None, pooling="avg"
    )
    if weights is not None:
        base.load_weights(str(weights))
    x = base(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, _head(x, num_classes), name="mobilenetv2")


ModelFn = Callable[[InputShape, int], "tf.keras.Model"]

#: The zoo by name (``jobs/train.py --model NAME``).
ZOO: dict[str, ModelFn] = {
    "dense": dense,
    "cnn_seed": cnn_seed,
    "compact": compact,
    "compact_wide": compact_wide,
    "vgg": vgg,
    "mobilenetv2": mobilenetv2,
}


def build_model(
    name: str,
    input_shape: InputShape,
    num_classes: int,
    *,
    weights: str | Path | None = None,
) -> tf.keras.Model:
    """The zoo's network ``name`` for ``input_shape`` and ``num_classes`` (``weights``: a
    local file of pretrained weights, for the networks that take one)."""
    if name not in ZOO:
        raise UnknownModelError(f"unknown model {name!r}; the zoo holds: {', '.join(ZOO)}")
    if num_classes < 2:
        raise FemoError(f"a classifier needs at least 2 classes, got {num_classes}")
    if weights is not None:
        if name != "mobilenetv2":
            raise FemoError(f"model {name!r} takes no pretrained weights")
        return mobilenetv2(input_shape, num_classes, weights)
    return ZOO[name](input_shape, num_classes)
